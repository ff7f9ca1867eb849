-- The provider definitely rejected a send: leave no live code and give the cooldown and
-- the counted sends back. Only this send's code and cooldown are removed. No deadline:
-- giving back late is still right.
-- KEYS[1] phone hash; ARGV: purpose, send id, phone limits (n, amount, window_ms...)
local now = now_ms()
local p = hload(KEYS[1], now)
local field = 'c:' .. ARGV[1]
if p.v[field] and split(p.v[field])[3] == ARGV[2] then
  hdrop(p, field)
end
if p.v['cd'] and split(p.v['cd'])[2] == string.sub(ARGV[2], 1, 6) then
  hdrop(p, 'cd')
end
local limits = read_limits(ARGV, 3)
if p.v['n'] and #limits > 0 then
  hput(p, 'n', windows_value(windows(p.v['n'], limits, now), -1))
end
hsave(p)
return 0
