-- Clear a phone's codes and failures (of the given purposes), its cooldown and send counts.
-- KEYS[1] phone hash; ARGV: purposes. Returns how many live fields were removed.
local now = now_ms()
local p = hload(KEYS[1], now)
local removed = 0
local fields = {'cd', 'n'}
for i = 1, #ARGV do
  fields[#fields + 1] = 'c:' .. ARGV[i]
  fields[#fields + 1] = 'f:' .. ARGV[i]
  fields[#fields + 1] = 'p:' .. ARGV[i]
  fields[#fields + 1] = 'u:' .. ARGV[i]
end
for _, field in ipairs(fields) do
  if p.v[field] then
    local kind = string.sub(field, 1, 2)
    if kind ~= 'p:' and kind ~= 'u:' then
      removed = removed + 1
    end
    hdrop(p, field)
  end
end
hsave(p)
return removed
