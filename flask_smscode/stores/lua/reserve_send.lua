-- May this phone get a code now? If so, count the send, start the cooldown and store
-- the code, all in one step (parallel sends must not all pass a separate check).
-- KEYS[1] code hash key, KEYS[2] cooldown key, KEYS[3..] one counter per phone limit
-- ARGV[1] code hash, ARGV[2] send id, ARGV[3] code ttl (s), ARGV[4] cooldown (s),
-- ARGV[5..] for each limit: amount, window (s)
-- Returns 0 when reserved, else milliseconds to wait.
-- The wait is the longest of the cooldown and every exhausted cap, so a client told to
-- retry after it is not refused again.
local wait_ms = redis.call('PTTL', KEYS[2])
if wait_ms < 0 then
  wait_ms = 0
end
for i = 3, #KEYS do
  local amount = tonumber(ARGV[2 * i - 1])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= amount then
    local left = redis.call('PTTL', KEYS[i])
    if left < 0 then
      left = tonumber(ARGV[2 * i]) * 1000
    end
    if left > wait_ms then
      wait_ms = left
    end
  end
end
if wait_ms > 0 then
  return wait_ms
end
for i = 3, #KEYS do
  local used = redis.call('INCR', KEYS[i])
  if used == 1 or redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
  end
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
end
-- The replaced code's hash is kept as 'p' so that typing it answers "expired", not "wrong".
local previous = redis.call('HGET', KEYS[1], 'h')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'id', ARGV[2])
if previous then
  redis.call('HSET', KEYS[1], 'p', previous)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
