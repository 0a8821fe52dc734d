-- Append a message or replace the one with the same id, keeping its position, and touch the
-- conversation. KEYS: messages hash, message order list, conversation hash.
-- ARGV: prefix, conversation id, message id, record, now (ms), and `once_run` ('' = always write).
-- With `once_run` (the message's run id) this is `save_message_once`: nothing is written when the stored
-- message with this id already belongs to that run. Nothing is ever written into a conversation that does
-- not exist. Returns 1 when written, else 0.
local owner = redis.call('HMGET', KEYS[3], 'o', 'c')
if not owner[1] then
  -- Never into a deleted (or never created) conversation: a run still ending after its conversation was
  -- deleted must not leave its answer behind, for whoever takes the id next to read.
  return 0
end
local exists = redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1
if ARGV[6] ~= '' then
  if exists then
    -- Decoded only on this rare path (a dead producer's answer), never on a run's ordinary writes.
    local ok, doc = pcall(cjson.decode, redis.call('HGET', KEYS[1], ARGV[3]))
    if ok and type(doc) == 'table' and type(doc.r) == 'table' and doc.r.runId == ARGV[6] then
      return 0
    end
  end
end
if not exists then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], 'u', ARGV[5])
redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':convs', ARGV[5], ARGV[2])
redis.call('ZADD', ARGV[1] .. ':user:' .. owner[1] .. ':chan:' .. owner[2], ARGV[5], ARGV[2])
return 1
