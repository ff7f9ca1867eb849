-- Is this code right? Compare in constant time, then either consume the code (and clear
-- the failures) or count the failure, in one step: parallel verifies of the right code
-- see exactly one success. Failures belong to phone + purpose and survive a resend.
-- KEYS[1] code hash key, KEYS[2] failure counter
-- ARGV[1] candidate hash, ARGV[2] max attempts, ARGV[3] failure window (s)
-- Returns {outcome, attempts_left, retry_after_s}
local max = tonumber(ARGV[2])
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= max then
  return {'locked', 0, redis.call('TTL', KEYS[2])}
end
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then
  return {'expired', max - failures, 0}
end
local candidate = ARGV[1]
-- Constant time: every byte is compared whatever the first difference.
local function differs(known)
  local diff = 0
  if #known ~= #candidate then
    diff = 1
  end
  for i = 1, #known do
    diff = bit.bor(diff, bit.bxor(string.byte(known, i), string.byte(candidate, i) or 0))
  end
  return diff ~= 0
end
if not differs(stored) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'ok', max, 0}
end
-- The code this one replaced: the user typed the older SMS. Not a guess, not counted.
local previous = redis.call('HGET', KEYS[1], 'p')
if previous and not differs(previous) then
  return {'expired', max - failures, 0}
end
failures = redis.call('INCR', KEYS[2])
if failures == 1 or redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if failures >= max then
  redis.call('DEL', KEYS[1])
end
return {'invalid', max - failures, redis.call('TTL', KEYS[2])}
