-- A user's reply (SmsUp), kept as the phone's last reply in field 'r'
-- ("expires|reply_id|sent_s"). Idempotent: the same reply again changes nothing
-- ('duplicate'); a reply sent before the one stored is 'late'.
-- KEYS[1] the phone's hash. ARGV: reply_id, sent_s (epoch seconds), ttl_ms
local now = now_ms()
local h = hload(KEYS[1], now)
local current = h.v['r']
if current then
  local parts = split(current)
  if parts[2] == ARGV[1] then
    return 'duplicate'
  end
  if (tonumber(parts[3]) or 0) > (tonumber(ARGV[2]) or 0) then
    return 'late'
  end
end
hput(h, 'r', t36(now + tonumber(ARGV[3])) .. '|' .. ARGV[1] .. '|' .. ARGV[2])
hsave(h)
return 'stored'
