-- Operator statistics counters (stores/stats.py): Cluster's send and verify counters (the
-- hour's hash is in its own slot; redis.py adds them up in the process and writes them
-- here every half second) and delivery latency buckets.
-- KEYS[1] the hour's hash. ARGV: field, amount (1 when absent), field, amount, ...
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]) or 1)
end
redis.call('EXPIRE', KEYS[1], STATS_TTL)
return 1
