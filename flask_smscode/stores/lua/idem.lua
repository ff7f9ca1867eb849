-- An Idempotency-Key's record after its claim (the claim itself is part of send.lua):
-- 'finish' records the answer of the request that claimed it, 'release' drops a claim whose
-- request sent nothing because of a fault (502, 503) so that a retry can send, 'peek'
-- tells a waiting duplicate what the key holds. KEYS[1] the key's hash.
-- ARGV: op, fingerprint, then for finish: answer ttl_ms, status, code, key variant, n1, n2
-- Returns what idem_look() returns, or {'none', 0}.
local now = now_ms()
local op, fp = ARGV[1], ARGV[2]
local h = hload(KEYS[1], now)
local f = h.v['f'] and split(h.v['f'])
if op == 'finish' then
  -- Another request's record (this claim ran out and was taken over) stays as it is.
  if not f or (f[2] == fp and f[3] == 'w') then
    idem_answer(h, fp, tonumber(ARGV[3]), now, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  end
  return {'none', 0}
end
if op == 'release' then
  if f and f[2] == fp and f[3] == 'w' then
    hdrop(h, 'f')
    hdrop(h, 'a')
    hsave(h)
  end
  return {'none', 0}
end
return idem_look(h, fp, now) or {'none', 0}
