-- Shared by every script (prepended when the scripts are loaded): the clock, the field codec
-- and fixed-window counters. State lives in hashes whose field values start with their own
-- expiry time ("<expires>|..."); a hash's TTL is its latest field's, and stale fields are
-- dropped on the next write. One hash per phone keeps a live code under 200 bytes.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Times are ms since the epoch written in base 36 (8 characters, not 13): every field must
-- stay under 64 bytes for Redis' compact listpack encoding of the hash.
local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'

local function t36_any(n)
  local out = ''
  repeat
    local d = n % 36
    out = string.sub(B36, d + 1, d + 1) .. out
    n = math.floor(n / 36)
  until n == 0
  return out
end

-- A digit's character: 0-9, then a-z.
local function c36(d)
  if d < 10 then
    return d + 48
  end
  return d + 87
end

local function t36(n)
  n = math.floor(n)
  if n < 78364164096 or n >= 2821109907456 then  -- not 8 digits (36^7 <= n < 36^8)
    return t36_any(n)
  end
  -- Times in ms (until 2059): one string built from 8 digits, not 8 concatenations
  -- (each a new interned string; a decision writes a dozen times).
  local d8 = n % 36
  n = (n - d8) / 36
  local d7 = n % 36
  n = (n - d7) / 36
  local d6 = n % 36
  n = (n - d6) / 36
  local d5 = n % 36
  n = (n - d5) / 36
  local d4 = n % 36
  n = (n - d4) / 36
  local d3 = n % 36
  n = (n - d3) / 36
  local d2 = n % 36
  local d1 = (n - d2) / 36
  return string.char(c36(d1), c36(d2), c36(d3), c36(d4), c36(d5), c36(d6), c36(d7), c36(d8))
end

local function n36(text)
  return tonumber(text, 36) or 0
end

local function expiry(value)
  return n36(string.match(value, '^([0-9a-z]+)'))
end

local function split(text)
  local out = {}
  for part in string.gmatch(text .. '|', '([^|]*)|') do
    out[#out + 1] = part
  end
  return out
end

-- A caller that was told "503" must not see its decision take effect later: each script gets
-- a deadline on Redis' clock and does nothing once it has passed (0 means no deadline).
local function too_late(deadline, now)
  return deadline > 0 and now > deadline
end

local function hload(key, now)
  local flat = redis.call('HGETALL', key)
  -- latest: the hash's TTL as hsave last set it (the latest live field's expiry)
  local h = {key = key, v = {}, dirty = {}, gone = {}, latest = 0}
  for i = 1, #flat, 2 do
    local expires = expiry(flat[i + 1])
    if expires > now then
      h.v[flat[i]] = flat[i + 1]
      if expires > h.latest then
        h.latest = expires
      end
    else
      h.gone[#h.gone + 1] = flat[i]
    end
  end
  return h
end

local function hput(h, field, value)
  h.v[field] = value
  h.dirty[field] = true
end

local function hdrop(h, field)
  if h.v[field] then
    h.v[field] = nil
    h.dirty[field] = nil
    h.gone[#h.gone + 1] = field
  end
end

local function hsave(h)
  local latest, args = 0, {}
  for field, value in pairs(h.v) do
    local expires = expiry(value)
    if expires > latest then
      latest = expires
    end
    if h.dirty[field] then
      args[#args + 1] = field
      args[#args + 1] = value
    end
  end
  if latest == 0 then
    if #h.gone > 0 then
      redis.call('DEL', h.key)
    end
    return
  end
  if #h.gone > 0 then
    redis.call('HDEL', h.key, unpack(h.gone))
  end
  if #args > 0 then
    redis.call('HSET', h.key, unpack(args))
  end
  -- Every write goes through here, so the TTL already is h.latest: each redis.call costs a
  -- few microseconds of Redis' single thread, so an unchanged TTL is not set again.
  if (#args > 0 or #h.gone > 0) and latest ~= h.latest then
    redis.call('PEXPIREAT', h.key, latest)
  end
end

-- Limits arrive as ARGV[i] = count, then (amount, window_ms) pairs. Returns limits, next index.
local function read_limits(argv, i)
  local n, limits = tonumber(argv[i]), {}
  for j = 1, n do
    limits[j] = {tonumber(argv[i + 2 * j - 1]), tonumber(argv[i + 2 * j])}
  end
  return limits, i + 2 * n + 1
end

-- Fixed windows, one per limit, in one field: "<latest>|<count>|<ends>|<count>|<ends>...".
-- Returns each window's {count, ends} and the wait (ms) before every exhausted one has reset.
local function windows(value, limits, now)
  local parts = value and split(value) or {}
  local state, wait = {}, 0
  for i = 1, #limits do
    local count = tonumber(parts[2 * i]) or 0
    local ends = n36(parts[2 * i + 1] or '0')
    if ends <= now then
      count, ends = 0, now + limits[i][2]
    end
    if count >= limits[i][1] and ends - now > wait then
      wait = ends - now
    end
    state[i] = {count, ends}
  end
  return state, wait
end

local function windows_value(state, delta)
  local out, latest = {}, 0
  for i = 1, #state do
    local count = state[i][1] + delta
    if count < 0 then
      count = 0
    end
    out[#out + 1] = count
    out[#out + 1] = t36(state[i][2])
    if state[i][2] > latest then
      latest = state[i][2]
    end
  end
  return t36(latest) .. '|' .. table.concat(out, '|')
end

-- Count one request of a client against its limits (field 's' for send, 'v' for verify).
-- Returns the wait in ms, 0 when the request was counted and may go on.
local function client_hit(key, field, limits, now)
  if #limits == 0 then
    return 0
  end
  local h = hload(key, now)
  local state, wait = windows(h.v[field], limits, now)
  if wait > 0 then
    return wait
  end
  hput(h, field, windows_value(state, 1))
  hsave(h)
  return 0
end

-- Constant time: the digests of both sides are compared, so where the two first differ
-- changes nothing (Lua compares its interned strings by address), at a third of the cost
-- of a byte loop.
local function same(known, candidate)
  return redis.sha1hex(known) == redis.sha1hex(candidate)
end

-- Optional keys: ARGV names their roles, one letter per key in KEYS order ('P' phone,
-- 'c' client, 'g' global budget, 'p' number prefix, 'i' idempotency key). One script then
-- serves a single Redis (every key, one round trip) and Cluster (one slot per call).
local function keyed(layout)
  local out = {}
  for j = 1, #layout do
    out[string.sub(layout, j, j)] = KEYS[j]
  end
  return out
end

local function seconds(ms)
  return math.max(1, math.ceil(ms / 1000))
end

-- A budget's first refusal in its window says so (the app logs one warning per window, not
-- one per request): field 'w' lives until the exhausted window ends.
local function notice_once(h, ends)
  if h.v['w'] then
    return false
  end
  hput(h, 'w', t36(ends) .. '|1')
  hsave(h)
  return true
end

-- The conversion guard's counts of one number prefix, field 'cv':
-- "<expires>|<window index>|<sends>|<verifies>|<previous sends>|<previous verifies>".
-- Two fixed windows; the previous one is weighted by the share of it that is still inside
-- the sliding window ending now.
local function conv_read(value, window, now)
  local k = math.floor(now / window)
  local c = {k = k, s = 0, v = 0, sp = 0, vp = 0}
  if value then
    local f = split(value)
    local stored = n36(f[2])
    if stored == k then
      c.s, c.v, c.sp, c.vp = tonumber(f[3]), tonumber(f[4]), tonumber(f[5]), tonumber(f[6])
    elseif stored == k - 1 then
      c.sp, c.vp = tonumber(f[3]), tonumber(f[4])
    end
  end
  return c
end

local function conv_value(c, window)
  return t36((c.k + 2) * window) .. '|' .. t36(c.k) .. '|' .. c.s .. '|' .. c.v .. '|' ..
    c.sp .. '|' .. c.vp
end

local function conv_estimate(c, window, now)
  local weight = 1 - (now - c.k * window) / window
  return c.s + c.sp * weight, c.v + c.vp * weight
end

-- Add delta sends (ds) or verifies (dv) to a prefix hash's conversion counts, and save.
local function conv_add(h, window, now, ds, dv)
  local c = conv_read(h.v['cv'], window, now)
  if ds < 0 and c.s == 0 then
    c.sp = math.max(0, c.sp + ds)  -- the send was counted in the previous window
  else
    c.s = math.max(0, c.s + ds)
  end
  c.v = c.v + dv
  hput(h, 'cv', conv_value(c, window))
end

-- Idempotency record: 'f' = "<expires>|<fingerprint>|<w working, d done>", and when done
-- 'a' = "<expires>|<status>|<code>|<key variant>|<n1>|<n2>" (the answer, re-rendered on
-- replay). Returns nil for an unknown key, else what the script answers.
local function idem_look(h, fp, now)
  local f = h.v['f']
  if not f then
    return nil
  end
  local parts = split(f)
  if parts[2] ~= fp then
    return {'reused', 0}
  end
  if parts[3] == 'w' then
    return {'pending', expiry(f) - now}
  end
  local a = split(h.v['a'] or '')
  return {'replay', a[2] or '', a[3] or '', a[4] or '', a[5] or '', a[6] or ''}
end

local function idem_answer(h, fp, ttl, now, status, code, variant, n1, n2)
  local expires = t36(now + ttl)
  hput(h, 'f', expires .. '|' .. fp .. '|d')
  hput(h, 'a', expires .. '|' .. status .. '|' .. code .. '|' .. variant .. '|' .. (n1 or '') ..
    '|' .. (n2 or ''))
  hsave(h)
end

-- Who is behind a prefix's unverified sends (the pumping guard's source rule, see
-- core/guard.py): field 'u:<source tag>' = "<expires>|<count>" per source, the source's
-- sends to the prefix not (yet) verified, kept a conversion window after its last send.
-- At most SOURCES_KEPT sources per prefix: past that every source is "many" already, and
-- the hash stays small (listpack kept: 24 bytes a source measured, 16 sources 384 bytes).
local SOURCES_KEPT = 16

-- Returns this source's count and its field's expiry, and how many distinct sources have
-- unverified sends in the prefix.
local function source_count(h, src, now)
  local mine, ends, distinct = 0, 0, 0
  for field, value in pairs(h.v) do
    if string.sub(field, 1, 2) == 'u:' then
      local f = split(value)
      local n = tonumber(f[2]) or 0
      if n > 0 then
        distinct = distinct + 1
      end
      if field == 'u:' .. src then
        mine, ends = n, n36(f[1])
      end
    end
  end
  return mine, ends, distinct
end

-- Add delta to a source's count (a send +1; a verify or a cancelled send -1).
local function source_add(h, src, delta, window, now)
  if src == '' then
    return
  end
  local field = 'u:' .. src
  local value = h.v[field]
  if not value then
    if delta <= 0 then
      return
    end
    local kept = 0
    for f in pairs(h.v) do
      if string.sub(f, 1, 2) == 'u:' then
        kept = kept + 1
      end
    end
    if kept >= SOURCES_KEPT then
      return
    end
    hput(h, field, t36(now + window) .. '|' .. delta)
    return
  end
  local f = split(value)
  local n = (tonumber(f[2]) or 0) + delta
  if n <= 0 then
    hdrop(h, field)
  elseif delta > 0 then
    hput(h, field, t36(now + window) .. '|' .. n)
  else
    hput(h, field, f[1] .. '|' .. n)
  end
end

-- Operator statistics (stores/stats.py): on a single Redis a send or check call carries the
-- hour's hash as role 's' (keyed()), and the decision's answer bumps one counter there in
-- the same call: no extra round trip. send.lua and check.lua are not edited for this:
-- redis.py wraps each body in a function and hands its answer to stats_after. On Cluster
-- the hour's hash is in its own slot: stats.lua bumps it in a call of its own.
local STATS_TTL = 1209600  -- 14 days, refreshed on every write
local STATS_REFUSALS = {client = 1, phone = 1, global = 1, prefix = 1, blocked = 1,
                        conversion = 1, source = 1}
local STATS_FAILURES = {invalid = 1, expired = 1, locked = 1, client = 1}

local function stats_bump(key, field)
  redis.call('HINCRBY', key, field, 1)
  redis.call('EXPIRE', key, STATS_TTL)
end

local function stats_after(script, answer)
  local key = keyed(ARGV[2] or '').s
  if not key or type(answer) ~= 'table' then
    return answer
  end
  local kind, field = answer[1], nil
  if kind == 'ok' then
    field = script == 'send' and 'sent' or 'verified'
  elseif script == 'send' and STATS_REFUSALS[kind] then
    field = 'r:' .. kind
  elseif script == 'check' and STATS_FAILURES[kind] then
    field = 'x:' .. kind
  end
  if field then
    stats_bump(key, field)
  end
  return answer
end
