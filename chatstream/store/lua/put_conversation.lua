-- Create or replace a conversation and index it. KEYS: conversation hash.
-- ARGV: prefix, id, user id, channel, updated_at, record, visibility.
-- Index keys are derived here from the owner and channel stored in the hash (single-node Redis only).
local old = redis.call('HMGET', KEYS[1], 'o', 'c')
if old[1] and (old[1] ~= ARGV[3] or old[2] ~= ARGV[4]) then
  redis.call('ZREM', ARGV[1] .. ':user:' .. old[1] .. ':convs', ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':user:' .. old[1] .. ':chan:' .. old[2], ARGV[2])
end
redis.call('HSET', KEYS[1], 'd', ARGV[6], 'u', ARGV[5], 'o', ARGV[3], 'c', ARGV[4], 'v', ARGV[7])
redis.call('ZADD', ARGV[1] .. ':user:' .. ARGV[3] .. ':convs', ARGV[5], ARGV[2])
redis.call('ZADD', ARGV[1] .. ':user:' .. ARGV[3] .. ':chan:' .. ARGV[4], ARGV[5], ARGV[2])
return 1
