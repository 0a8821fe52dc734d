-- Drop a lease only while run_id still holds it (a late release must not free a successor's lease).
-- KEYS: liveness lease, holding lease [, the run's stop request]. ARGV: run_id.
-- With the stop request (a single Redis, where every key is on one node) it is deleted in the same step,
-- whoever holds the conversation (it is the run's own key); on a Redis Cluster it is another slot, deleted
-- by the caller at the same time.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if KEYS[3] then
  redis.call('DEL', KEYS[3])
end
return 1
