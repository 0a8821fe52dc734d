-- Extend one lease if it is still held; never re-take an expired or released one (its slot may be gone).
-- KEYS[1] lease set; ARGV: now (ms), ttl (ms), member. Returns 1 when extended, 0 otherwise.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[3]))
if not score or score <= now then
    return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[3])
-- Every lease has the same TTL (one deployment, one setting), so this deadline is the set's latest.
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl)))
return 1
