-- Remove and return a suspended run in one step: of two concurrent takers exactly one gets it.
-- KEYS: the conversation's suspended-runs hash. ARGV: run id, now (ms). Returns the record, or nil when
-- there is none (or it expired).
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return nil
end
redis.call('HDEL', KEYS[1], ARGV[1])
local expires, record = string.match(value, '^(%d+) (.*)$')
if not expires or tonumber(expires) <= tonumber(ARGV[2]) then
  return nil
end
return record
