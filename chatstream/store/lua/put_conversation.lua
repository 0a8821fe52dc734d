-- Create or replace a conversation's record. KEYS: conversation hash [, owner's index, owner's channel index].
-- ARGV: record, updated_at, owner, channel, visibility, conversation id.
-- With the index keys (a single Redis, where every key is on one node) the conversation is indexed in the
-- same step; on a Redis Cluster the indexes are another slot, indexed by the caller's next step
-- (`index.lua`). Returns {previous owner, previous channel} ('' when new), so the caller can take the
-- conversation out of the indexes it left.
local old = redis.call('HMGET', KEYS[1], 'o', 'c')
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 'o', ARGV[3], 'c', ARGV[4], 'v', ARGV[5])
if #KEYS == 3 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[6])
end
return {old[1] or '', old[2] or ''}
