-- One operator statistics counter (stores/stats.py): Cluster's send and verify counters
-- (the hour's hash is in its own slot) and delivery latency buckets.
-- KEYS[1] the hour's hash. ARGV: field
stats_bump(KEYS[1], ARGV[1])
return 1
