-- Append a message or replace the one with the same id, keeping its position, and touch the
-- conversation. KEYS: messages hash, message order list, conversation hash.
-- ARGV: prefix, conversation id, message id, record, now (ms).
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
local owner = redis.call('HMGET', KEYS[3], 'o', 'c')
if owner[1] then
  redis.call('HSET', KEYS[3], 'u', ARGV[5])
  redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':convs', ARGV[5], ARGV[2])
  redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':chan:' .. owner[2], ARGV[5], ARGV[2])
end
return 1
