-- Undo a verify whose consume the replicas did not acknowledge (SMSCODE_STORAGE_MIN_REPLICAS,
-- stores/redis.py): the app answers 503, so the code must still verify on the retry. Puts
-- back the fields check.lua consumed, as they were (their own expiry inside), unless the
-- phone got a new code meanwhile (a resend: the old code stays gone, as a resend would
-- leave it) or they have expired since. Takes back the prefix's conversion check.lua
-- counted. No deadline: putting back late is still right, and a replica that missed the
-- consume and the restore alike holds the code unconsumed, which is the same state.
-- Keys named by ARGV[1] (see keyed()): 'P' phone hash, 'p' prefix hash.
-- ARGV: layout, purpose, code value, failures value, replaced code value ('' none),
--       conversion window_ms, the verifying request's source tag ('' unknown), the
--       verify's id ('' none).
-- By id (code value '', the verify's reply was lost with its connection, stores/redis.py
-- _defer_undo): the code comes from the 'u:<purpose>' record check.lua kept, and only if
-- it names this verify — else the consume never ran (or another verify's did, which was
-- answered): nothing is put back, not even the conversion. Failures and the replaced
-- code are not in that record: the consume had cleared them, and the restored code
-- starts with its attempts whole (the consume proved the code right).
-- Returns 1 when the code was put back, else 0.
local now = now_ms()
local key = keyed(ARGV[1])
local purpose = ARGV[2]
local conv_window = tonumber(ARGV[6]) or 0
local src = ARGV[7] or ''
local vid = ARGV[8] or ''
local code = ARGV[3]
local restored = 0
if key.P then
  local p = hload(key.P, now)
  if vid ~= '' then
    local used = p.v['u:' .. purpose]
    local f = used and split(used)
    if not f or f[4] ~= vid then
      return 0
    end
    hdrop(p, 'u:' .. purpose)
    if code == '' then
      code = f[1] .. '|' .. f[2] .. '|' .. f[3]
    end
  end
  if code ~= '' and expiry(code) > now and not p.v['c:' .. purpose] then
    hput(p, 'c:' .. purpose, code)
    if ARGV[4] ~= '' and expiry(ARGV[4]) > now and not p.v['f:' .. purpose] then
      hput(p, 'f:' .. purpose, ARGV[4])
    end
    if ARGV[5] ~= '' and expiry(ARGV[5]) > now and not p.v['p:' .. purpose] then
      hput(p, 'p:' .. purpose, ARGV[5])
    end
    restored = 1
  end
  hsave(p)
end
if key.p and conv_window > 0 then
  local x = hload(key.p, now)
  local c = conv_read(x.v['cv'], conv_window, now)
  if c.v > 0 then
    c.v = c.v - 1
  elseif c.vp > 0 then
    c.vp = c.vp - 1
  end
  hput(x, 'cv', conv_value(c, conv_window))
  source_add(x, src, 1, conv_window, now)
  hsave(x)
end
return restored
