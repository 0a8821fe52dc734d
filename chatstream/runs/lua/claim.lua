-- Bind an idempotency key. KEYS: key. ARGV: value, ttl_ms. Returns nil when bound now, else the value
-- already bound.
local existing = redis.call('GET', KEYS[1])
if existing then
  return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return nil
