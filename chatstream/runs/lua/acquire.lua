-- Claim a conversation. KEYS: liveness lease, holding lease. ARGV: run_id, ttl_ms, hold_ms.
-- Returns nil when claimed, else the live holder. A holder whose liveness lapsed is presumed dead: the claim
-- takes the conversation over (its holding key is overwritten, so if it was only paused, its next renew
-- learns that it lost the conversation).
-- Known race, accepted: if the reply to a successful claim is lost and redis-py retries, the retry sees
-- our own run as the holder (the memory twin answers the same); the lease then lapses after ttl.
local holder = redis.call('GET', KEYS[1])
if holder then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return nil
