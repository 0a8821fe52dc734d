-- Delete a conversation and everything under it. KEYS: conversation hash, messages hash, message order
-- list, suspended-run set, votes hash. ARGV: prefix, id. Returns {record, updated_at} or nil when there was
-- none.
local h = redis.call('HMGET', KEYS[1], 'd', 'u', 'o', 'c')
for _, run in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  redis.call('DEL', ARGV[1] .. ':srun:' .. run)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if h[3] then
  redis.call('ZREM', ARGV[1] .. ':user:' .. h[3] .. ':convs', ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':user:' .. h[3] .. ':chan:' .. h[4], ARGV[2])
end
if h[1] then
  return {h[1], h[2]}
end
return nil
