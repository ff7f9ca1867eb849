-- A read-only snapshot for operators: Redis' clock and the live fields of one hash.
-- KEYS[1] the hash. Returns {now_ms, field, value, field, value...}
local now = now_ms()
local h = hload(KEYS[1], now)
local out = {now}
for field, value in pairs(h.v) do
  out[#out + 1] = field
  out[#out + 1] = value
end
return out
