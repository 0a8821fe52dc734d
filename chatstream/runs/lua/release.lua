-- Drop a lease only while run_id still holds it (a late release must not free a successor's lease).
-- KEYS: liveness lease, holding lease. ARGV: run_id.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
