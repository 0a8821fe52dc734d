-- Delete a conversation and everything under it. KEYS: conversation hash, messages hash, message order
-- list, suspended-runs hash, votes hash (all of one conversation: one slot) [, owner's index, owner's channel
-- index]. ARGV: conversation id [, the owner and channel the index keys are for].
-- Returns {record, updated_at, owner, channel, 1 when taken out of the indexes here}, or nil when there was
-- none. The index keys (a single Redis) are used only when they are the stored owner's; otherwise (a Redis
-- Cluster: another slot) the caller takes it out of its user's indexes in its next step.
local h = redis.call('HMGET', KEYS[1], 'd', 'u', 'o', 'c')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if not h[1] then
  return nil
end
if #KEYS == 7 and h[3] == ARGV[2] and h[4] == ARGV[3] then
  redis.call('ZREM', KEYS[6], ARGV[1])
  redis.call('ZREM', KEYS[7], ARGV[1])
  return {h[1], h[2], h[3], h[4], 1}
end
return {h[1], h[2], h[3] or '', h[4] or '', 0}
