-- Extend a lease only while run_id still holds it. KEYS: lease. ARGV: run_id, ttl_ms. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
