-- Remove a message and every message after it (with their votes), then append the replacement if any,
-- in one step: regenerate and edit. KEYS: messages hash, message order list, conversation hash, votes hash.
-- ARGV: prefix, conversation id, message id, replacement id ('' = none), replacement record, now (ms).
-- Returns the removed ids (oldest first), or false when the message is not in the conversation.
local owner = redis.call('HMGET', KEYS[3], 'o', 'c')
if not owner[1] then
  return false
end
local at = redis.call('LPOS', KEYS[2], ARGV[3])
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
if ARGV[4] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[4]) == 0 then
    redis.call('RPUSH', KEYS[2], ARGV[4])
  end
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
  redis.call('HSET', KEYS[3], 'u', ARGV[6])
  redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':convs', ARGV[6], ARGV[2])
  redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':chan:' .. owner[2], ARGV[6], ARGV[2])
end
return ids
