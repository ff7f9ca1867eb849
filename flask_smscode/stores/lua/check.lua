-- Is this code right? Compare in constant time, then either consume the code (and clear
-- the failures) or count the failure, in one step: parallel verifies of the right code see
-- exactly one success. Failures belong to phone + purpose and survive a resend.
-- KEYS[1] phone hash, KEYS[2] client hash (optional)
-- ARGV: deadline_ms, purpose, candidate hash, max attempts, failure window_ms,
--       client limits (n, amount, window_ms...)
-- Returns {outcome, attempts_left, wait_ms}; outcome is ok, invalid, expired, locked,
-- client (the client's per-IP limit) or late.
local now = now_ms()
if too_late(tonumber(ARGV[1]), now) then
  return {'late', 0, 0}
end
local purpose, candidate = ARGV[2], ARGV[3]
local max, window = tonumber(ARGV[4]), tonumber(ARGV[5])
if KEYS[2] then
  local wait = client_hit(KEYS[2], 'v', read_limits(ARGV, 6), now)
  if wait > 0 then
    return {'client', 0, wait}
  end
end
local p = hload(KEYS[1], now)
local code_field, fail_field = 'c:' .. purpose, 'f:' .. purpose
local failures, fail_ends = 0, 0
if p.v[fail_field] then
  local f = split(p.v[fail_field])
  fail_ends, failures = n36(f[1]), tonumber(f[2])
end
if failures >= max then
  return {'locked', 0, fail_ends - now}
end
if not p.v[code_field] then
  return {'expired', max - failures, 0}
end
local code = split(p.v[code_field])  -- expires, hash, send id
if same(code[2], candidate) then
  hdrop(p, code_field)
  hdrop(p, fail_field)
  hdrop(p, 'p:' .. purpose)
  hsave(p)
  return {'ok', max, 0}
end
-- The code this one replaced: the user typed the older SMS. Not a guess, not counted.
local replaced = p.v['p:' .. purpose]
if replaced and same(split(replaced)[2], candidate) then
  return {'expired', max - failures, 0}
end
failures = failures + 1
if fail_ends <= now then
  fail_ends = now + window
end
hput(p, fail_field, t36(fail_ends) .. '|' .. failures)
if failures >= max then
  hdrop(p, code_field)
end
hsave(p)
return {'invalid', max - failures, fail_ends - now}
