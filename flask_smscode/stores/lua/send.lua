-- May this phone get a code now? If so count the send, start the cooldown and store the
-- code, all in one step (parallel sends must not all pass a separate check). Every key is
-- optional and named by ARGV[2] (see keyed() in common.lua): on a single Redis one call
-- carries the idempotency key, the client's per-IP hit, the phone, the global budget and
-- the number prefix (one round trip per request); on Cluster the app calls it once per slot.
-- Order: a known Idempotency-Key answers alone (nothing counted); then the client hit; then
-- every check (phone cooldown and caps, global budget, prefix block, prefix budget,
-- conversion) before any write, so a refusal leaves the other counters untouched.
-- ARGV: deadline_ms, layout, purpose, code hash, send id, the app's settings in one
--       argument ("code ttl_ms|cooldown_ms|phone limits|client limits|global limits|prefix
--       limits (each n|amount|window_ms..)|conversion window_ms|min sends|min conversion
--       (per mille)|block_ms|min sources|source sends|shadow"), idempotency fingerprint,
--       claim ms, answer ttl_ms, source tag ('' unknown)
-- Returns {'ok', 0, 0[, would_block]} | {'late', 0} | {<refusal>, wait_ms, notice} where
-- refusal is client, phone, global, prefix, blocked, conversion or source | {'reused', 0} |
-- {'pending', wait_ms} | {'replay', status, code, key variant, n1, n2}
-- Shadow mode (SMSCODE_GUARD_MODE = "shadow"): the guard's checks (global, prefix,
-- blocked, conversion, source) decide and keep their state as in enforce mode, but the
-- first one that would refuse is returned as would_block beside 'ok', and the send goes on.
local now = now_ms()
if too_late(tonumber(ARGV[1]), now) then
  return {'late', 0}
end
local key = keyed(ARGV[2])
local purpose, hash, id = ARGV[3], ARGV[4], ARGV[5]
local conf = split(ARGV[6])
local ttl, cooldown = tonumber(conf[1]), tonumber(conf[2])
local phone_limits, i = read_limits(conf, 3)
local client_limits, global_limits, prefix_limits
client_limits, i = read_limits(conf, i)
global_limits, i = read_limits(conf, i)
prefix_limits, i = read_limits(conf, i)
local conv = {window = tonumber(conf[i]), min = tonumber(conf[i + 1]),
              ratio = tonumber(conf[i + 2]), block = tonumber(conf[i + 3]),
              sources = tonumber(conf[i + 4]) or 0, per_source = tonumber(conf[i + 5]) or 0}
local shadow = conf[i + 6] == '1'
local fp, claim_ms, answer_ttl = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local src = ARGV[10] or ''
local would

local idem
if key.i then
  idem = hload(key.i, now)
  local known = idem_look(idem, fp, now)
  if known then
    return known
  end
end

-- A refusal is this key's answer too (replayed to a retry with the same key).
-- Not the per-IP refusal: past its budget a client's fresh keys would each store a record
-- (the store growing with the attacker's rate); a retry is simply decided again.
local function refuse(kind, wait, notice)
  if idem and kind ~= 'client' then
    idem_answer(idem, fp, answer_ttl, now, 429, 'throttled', 'r:' .. kind, seconds(wait))
  end
  return {kind, wait, notice and 1 or 0}
end

if key.c then
  local wait = client_hit(key.c, 's', client_limits, now)
  if wait > 0 then
    return refuse('client', wait)
  end
end

local p, state
if key.P then
  p = hload(key.P, now)
  -- The wait is the longest of the cooldown and every exhausted cap, so a client told to
  -- retry after it is not refused again.
  local wait, capped = 0, 0
  if p.v['cd'] then
    wait = expiry(p.v['cd']) - now
  end
  state, capped = windows(p.v['n'], phone_limits, now)
  if capped > wait then
    wait = capped
  end
  if wait > 0 then
    return refuse('phone', wait)
  end
end

local g, gstate
-- The guard's refusals: in shadow mode the first is remembered and the send goes on.
local function guard_refuse(kind, wait, notice)
  if not shadow then
    return refuse(kind, wait, notice)
  end
  if not would then
    would = kind
  end
  return nil
end

if key.g then
  g = hload(key.g, now)
  local wait
  gstate, wait = windows(g.v['n'], global_limits, now)
  if wait > 0 then
    local r = guard_refuse('global', wait, notice_once(g, now + wait))
    if r then
      return r
    end
  end
end

local x, xstate, cstate
if key.p then
  x = hload(key.p, now)
  local r
  if x.v['b'] then
    r = guard_refuse('blocked', expiry(x.v['b']) - now)
    if r then
      return r
    end
  end
  local wait
  xstate, wait = windows(x.v['n'], prefix_limits, now)
  if wait > 0 then
    r = guard_refuse('prefix', wait, notice_once(x, now + wait))
    if r then
      return r
    end
  end
  if conv.window > 0 then
    -- Who is behind the unverified sends (source_count in common.lua; core/guard.py).
    local mine, mine_ends, distinct = source_count(x, src, now)
    if src ~= '' and conv.per_source > 0 and mine >= conv.per_source then
      r = guard_refuse('source', mine_ends - now)
      if r then
        return r
      end
    end
    cstate = conv_read(x.v['cv'], conv.window, now)
    local sends, verifies = conv_estimate(cstate, conv.window, now)
    -- Blocked before, lately (probation, field 'bh'): judged from the first unverified
    -- send, and the sources behind that block still count (see core/guard.py).
    local probation = x.v['bh'] ~= nil
    local min = conv.min
    if probation then
      min = 1
    end
    local enough = probation or src == '' or conv.sources == 0 or distinct >= conv.sources
    if not x.v['b'] and enough and sends >= min and verifies * 1000 < conv.ratio * sends then
      hput(x, 'b', t36(now + conv.block) .. '|' .. math.floor(sends) .. '|' ..
        math.floor(verifies))
      hput(x, 'bh', t36(now + 2 * conv.block) .. '|1')
      hsave(x)
      r = guard_refuse('conversion', conv.block, true)
      if r then
        return r
      end
    end
  end
end

-- Every check passed: count and store.
if p then
  if #phone_limits > 0 then
    hput(p, 'n', windows_value(state, 1))
  end
  if cooldown > 0 then
    -- The first 6 characters of the send id tell cancel whose cooldown this is.
    hput(p, 'cd', t36(now + cooldown) .. '|' .. string.sub(id, 1, 6))
  end
  -- The replaced code's hash stays beside the new one ('p:'), so typing it answers
  -- "expired". Two fields, not one: a value over 64 bytes would make Redis store the whole
  -- hash as a hashtable, three times the memory of its compact listpack form.
  local field = 'c:' .. purpose
  if p.v[field] then
    hput(p, 'p:' .. purpose, t36(now + ttl) .. '|' .. split(p.v[field])[2])
  else
    hdrop(p, 'p:' .. purpose)
  end
  hput(p, field, t36(now + ttl) .. '|' .. hash .. '|' .. id)
  hsave(p)
end
if g then
  hput(g, 'n', windows_value(gstate, 1))
  hsave(g)
end
if x then
  if #prefix_limits > 0 then
    hput(x, 'n', windows_value(xstate, 1))
  end
  if cstate then
    cstate.s = cstate.s + 1
    hput(x, 'cv', conv_value(cstate, conv.window))
    source_add(x, src, 1, conv.window, now)
  end
  hsave(x)
end
if idem then
  -- Claimed: a duplicate waits for this request's answer until the claim runs out.
  hput(idem, 'f', t36(now + claim_ms) .. '|' .. fp .. '|w')
  hdrop(idem, 'a')
  hsave(idem)
end
if would then
  return {'ok', 0, 0, would}
end
return {'ok', 0, 0}
