-- Claim a conversation. KEYS: lease. ARGV: run_id, ttl_ms. Returns nil when claimed, else the holder.
-- Known race, accepted: if the reply to a successful claim is lost and redis-py retries, the retry sees
-- our own run as the holder (the memory twin answers the same); the lease then lapses after ttl.
local holder = redis.call('GET', KEYS[1])
if holder then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return nil
