-- Remove and return a suspended run in one step: of two concurrent takers exactly one gets it.
-- KEYS: run hash. ARGV: prefix, run id.
local h = redis.call('HMGET', KEYS[1], 'd', 'c')
if not h[1] then
  return nil
end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. ':convruns:' .. h[2], ARGV[2])
return h[1]
