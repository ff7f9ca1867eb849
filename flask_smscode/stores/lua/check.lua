-- Is this code right? Compare in constant time, then either consume the code (and clear
-- the failures) or count the failure, in one step: parallel verifies of the right code see
-- exactly one success. Failures belong to phone + purpose and survive a resend. A success
-- counts as a conversion of the phone's number prefix (the pumping guard).
-- Keys named by ARGV[2] (see keyed()): 'c' client hash, 'P' phone hash, 'p' prefix hash.
-- On Cluster the app calls it per slot; a call with only 'p' counts one conversion.
-- ARGV: deadline_ms, layout, purpose, candidate hash, and the app's settings in one
--       argument: "max attempts|failure window_ms|conversion window_ms|client limits
--       (n|amount|window_ms...)", the verifying request's source tag ('' unknown): a success
--       takes one unverified send off that source's count in the prefix (see source_add),
--       '1' when the app waits for replicas (SMSCODE_STORAGE_MIN_REPLICAS): a success then
--       also returns the fields it consumed, so that restore.lua can put them back if the
--       replicas do not acknowledge the consume (the 503 must leave the code usable),
--       and this verify's id ('' none): a success then keeps the consumed code under
--       'u:<purpose>' = "expires|hash|send id|verify id" until the code's own expiry, so
--       that restore.lua can put it back by that id when the reply was lost with the
--       connection and the app answered 503 without knowing (stores/redis.py _defer_undo)
-- Returns {outcome, attempts_left, wait_ms[, code, failures, replaced]}; outcome is ok,
-- invalid, expired, locked, client (the client's per-IP limit) or late.
local now = now_ms()
if too_late(tonumber(ARGV[1]), now) then
  return {'late', 0, 0}
end
local key = keyed(ARGV[2])
local purpose, candidate = ARGV[3], ARGV[4]
local conf = split(ARGV[5])
local max, window, conv_window = tonumber(conf[1]), tonumber(conf[2]), tonumber(conf[3])
local client_limits = read_limits(conf, 4)
local src = ARGV[6] or ''
local keep = ARGV[7] == '1'
local vid = ARGV[8] or ''

local function converted()
  if key.p and conv_window > 0 then
    local x = hload(key.p, now)
    conv_add(x, conv_window, now, 0, 1)
    source_add(x, src, -1, conv_window, now)
    hsave(x)
  end
  return {'ok', max, 0}
end

if key.c then
  local wait = client_hit(key.c, 'v', client_limits, now)
  if wait > 0 then
    return {'client', 0, wait}
  end
end
if not key.P then
  return converted()
end
local p = hload(key.P, now)
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
  local used = p.v[code_field]
  local before = keep and {used, p.v[fail_field] or '', p.v['p:' .. purpose] or ''}
  hdrop(p, code_field)
  hdrop(p, fail_field)
  hdrop(p, 'p:' .. purpose)
  if vid ~= '' then
    hput(p, 'u:' .. purpose, used .. '|' .. vid)
  end
  hsave(p)
  local answer = converted()
  if before then
    answer[4], answer[5], answer[6] = before[1], before[2], before[3]
  end
  return answer
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
