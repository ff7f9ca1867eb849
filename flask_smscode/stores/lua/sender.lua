-- Which sender of SMSCODE_SENDER carried a code, when it was not the first (a failover):
-- field 'sn:<purpose>' = "expires|send_id|index", expiring with the code it describes, so a
-- send by the first sender (the usual case) writes nothing. Written only while the phone's
-- live code is still this send's: a newer send has replaced it otherwise.
-- KEYS[1] the phone's hash. ARGV: purpose, send id, sender index (1 = the second sender)
local now = now_ms()
local h = hload(KEYS[1], now)
local code = h.v['c:' .. ARGV[1]]
if not code then
  return 0
end
local parts = split(code)
if parts[3] ~= ARGV[2] then
  return 0
end
hput(h, 'sn:' .. ARGV[1], parts[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3])
hsave(h)
return 1
