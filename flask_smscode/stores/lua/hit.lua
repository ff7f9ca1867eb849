-- Count one request of a client that is refused before its phone is known (a malformed
-- request still spends its budget), or every request on Redis Cluster, where the client's
-- hash and the phone's live in different slots.
-- KEYS[1] client hash; ARGV: deadline_ms, field ('s' send, 'v' verify), limits (n, ...)
-- Returns {'ok', 0} | {'late', 0} | {'client', wait_ms}
local now = now_ms()
if too_late(tonumber(ARGV[1]), now) then
  return {'late', 0}
end
local wait = client_hit(KEYS[1], ARGV[2], read_limits(ARGV, 3), now)
if wait > 0 then
  return {'client', wait}
end
return {'ok', 0}
