-- The provider definitely rejected a send: leave no live code and give the cooldown and
-- the counted sends back. Only this send's code and cooldown are removed.
-- KEYS[1] code hash key, KEYS[2] cooldown key, KEYS[3..] send counters
-- ARGV[1] send id
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
for i = 3, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
    redis.call('DECR', KEYS[i])
  end
end
return 0
