-- A delivery report pushed by Alibaba Cloud, stored against the phone's hash in field 'd'
-- ("expires|report_id|state|err_code"; state 'w' = sent, waiting, with the BizId as err_code). Idempotent: the same send's report again changes
-- nothing ('duplicate'); a report of an older send than the one stored is dropped ('late').
-- report_id is 2 random + 8 time characters (base 36, fixed width: compared as strings).
-- KEYS[1] the phone's hash. ARGV: report_id, state ('d' or 'f'), err_code, ttl_ms
local now = now_ms()
local h = hload(KEYS[1], now)
local current = h.v['d']
if current then
  local parts = split(current)
  local stored = parts[2]
  -- A 'w' (waiting) record of this send is replaced by its report, not the reverse.
  if stored == ARGV[1] and (parts[3] ~= 'w' or ARGV[2] == 'w') then
    return 'duplicate'
  end
  if string.sub(stored, 3) > string.sub(ARGV[1], 3) then
    return 'late'
  end
end
hput(h, 'd', t36(now + tonumber(ARGV[4])) .. '|' .. ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3])
hsave(h)
return 'stored'
