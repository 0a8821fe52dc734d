-- Remove a message and every message after it (with their votes), then append the replacement if any,
-- in one step: regenerate and edit. KEYS: messages hash, message order list, conversation hash, votes hash
-- [, owner's index, owner's channel index]. ARGV: message id, replacement id ('' = none), replacement record,
-- now (ms), conversation id [, the owner and channel the index keys are for].
-- Returns {owner, channel, removed ids (oldest first), 1 when indexed here}, or false when the message is not
-- in the conversation. With a replacement the conversation is touched and re-scored at `now`: here when the
-- index keys are the stored owner's (a single Redis), else by the caller's next step (`index.lua`).
local owner = redis.call('HMGET', KEYS[3], 'o', 'c')
if not owner[1] then
  return false
end
local at = redis.call('LPOS', KEYS[2], ARGV[1])
if not at then
  return false
end
local ids = redis.call('LRANGE', KEYS[2], at, -1)
for i = 1, #ids, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
  redis.call('HDEL', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[4], unpack(chunk))
end
if at == 0 then
  redis.call('DEL', KEYS[2])
else
  redis.call('LTRIM', KEYS[2], 0, at - 1)
end
if ARGV[2] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
    redis.call('RPUSH', KEYS[2], ARGV[2])
  end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[3], 'u', ARGV[4])
  if #KEYS == 6 and owner[1] == ARGV[6] and owner[2] == ARGV[7] then
    redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
    redis.call('ZADD', KEYS[6], ARGV[4], ARGV[5])
    return {owner[1], owner[2] or '', ids, 1}
  end
end
return {owner[1], owner[2] or '', ids, 0}
