-- The provider definitely rejected a send: leave no live code and give the cooldown and
-- the counted sends back — the phone's, the global budget's and the number prefix's (a
-- provider outage must not look like a prefix whose codes are never verified). Only this
-- send's code and cooldown are removed. No deadline: giving back late is still right.
-- Keys named by ARGV[1] (see keyed()): 'P' phone, 'g' global budget, 'p' prefix.
-- ARGV: layout, purpose, send id, phone limits, global limits, prefix limits (each n,
--       amount, window_ms...), conversion window_ms, the send's source tag ('' unknown),
--       '?' when the app does not know whether the send's reservation was applied (its
--       reply was lost with the connection, stores/redis.py _defer_undo): then nothing is
--       given back unless the phone still holds this send's code or cooldown — the proof
--       that the reservation ran (a call without 'P' gives nothing back). Else ''.
-- Returns 1 when something was given back, else 0.
local now = now_ms()
local key = keyed(ARGV[1])
local phone_limits, i = read_limits(ARGV, 4)
local global_limits, prefix_limits
global_limits, i = read_limits(ARGV, i)
prefix_limits, i = read_limits(ARGV, i)
local conv_window = tonumber(ARGV[i])
local src = ARGV[i + 1] or ''
local unsure = ARGV[i + 2] == '?'
if unsure and not key.P then
  return 0
end
if key.P then
  local p = hload(key.P, now)
  local field = 'c:' .. ARGV[2]
  local found = false
  if p.v[field] and split(p.v[field])[3] == ARGV[3] then
    hdrop(p, field)
    found = true
  end
  if p.v['cd'] and split(p.v['cd'])[2] == string.sub(ARGV[3], 1, 6) then
    hdrop(p, 'cd')
    found = true
  end
  if unsure and not found then
    return 0
  end
  if p.v['n'] and #phone_limits > 0 then
    hput(p, 'n', windows_value(windows(p.v['n'], phone_limits, now), -1))
  end
  hsave(p)
end
if key.g and #global_limits > 0 then
  local g = hload(key.g, now)
  if g.v['n'] then
    hput(g, 'n', windows_value(windows(g.v['n'], global_limits, now), -1))
    hsave(g)
  end
end
if key.p then
  local x = hload(key.p, now)
  if x.v['n'] and #prefix_limits > 0 then
    hput(x, 'n', windows_value(windows(x.v['n'], prefix_limits, now), -1))
  end
  if x.v['cv'] and conv_window > 0 then
    conv_add(x, conv_window, now, -1, 0)
    source_add(x, src, -1, conv_window, now)
  end
  hsave(x)
end
return 1
