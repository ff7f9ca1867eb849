-- May this phone get a code now? If so count the send, start the cooldown and store the
-- code, all in one step (parallel sends must not all pass a separate check). On a single
-- Redis the client's per-IP hit is folded in (KEYS[2]): one round trip per request.
-- KEYS[1] phone hash, KEYS[2] client hash (optional)
-- ARGV: deadline_ms, purpose, code hash, send id, code ttl_ms, cooldown_ms,
--       phone limits (n, amount, window_ms...), client limits (n, amount, window_ms...)
-- Returns {'ok', 0} | {'late', 0} | {'client', wait_ms} | {'phone', wait_ms}
local now = now_ms()
if too_late(tonumber(ARGV[1]), now) then
  return {'late', 0}
end
local purpose, hash, id = ARGV[2], ARGV[3], ARGV[4]
local ttl, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6])
local phone_limits, i = read_limits(ARGV, 7)
local client_limits = read_limits(ARGV, i)
if KEYS[2] then
  local wait = client_hit(KEYS[2], 's', client_limits, now)
  if wait > 0 then
    return {'client', wait}
  end
end
local p = hload(KEYS[1], now)
-- The wait is the longest of the cooldown and every exhausted cap, so a client told to
-- retry after it is not refused again.
local wait = 0
if p.v['cd'] then
  wait = expiry(p.v['cd']) - now
end
local state, capped = windows(p.v['n'], phone_limits, now)
if capped > wait then
  wait = capped
end
if wait > 0 then
  return {'phone', wait}
end
if #phone_limits > 0 then
  hput(p, 'n', windows_value(state, 1))
end
if cooldown > 0 then
  -- The first 6 characters of the send id tell cancel whose cooldown this is.
  hput(p, 'cd', t36(now + cooldown) .. '|' .. string.sub(id, 1, 6))
end
-- The replaced code's hash stays beside the new one ('p:'), so typing it answers
-- "expired". Two fields, not one: a value over 64 bytes would make Redis store the whole
-- hash as a hashtable, three times the memory of its compact listpack form.
local field = 'c:' .. purpose
if p.v[field] then
  hput(p, 'p:' .. purpose, t36(now + ttl) .. '|' .. split(p.v[field])[2])
else
  hdrop(p, 'p:' .. purpose)
end
hput(p, field, t36(now + ttl) .. '|' .. hash .. '|' .. id)
hsave(p)
return {'ok', 0}
