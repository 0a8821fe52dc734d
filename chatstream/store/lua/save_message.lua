-- Append a message or replace the one with the same id, keeping its position, and touch the
-- conversation. KEYS: messages hash, message order list, conversation hash [, owner's index, owner's channel
-- index]. ARGV: message id, record, now (ms), `once_run` ('' = always write), conversation id [, the owner
-- and channel the index keys are for].
-- With `once_run` (the message's run id) this is `save_message_once`: nothing is written when the stored
-- message with this id already belongs to that run. Nothing is ever written into a conversation that does
-- not exist. The index keys (a single Redis, the owner remembered by the caller) re-score the conversation
-- at `now` in the same step when they are the stored owner's; otherwise (a Redis Cluster: another slot) the
-- caller re-indexes it in its next step (`index.lua`).
-- Returns 1 when written and indexed here (a single Redis's every save: a short reply), 0 when there is no
-- conversation, -1 when `once_run` found the message already stored, else {owner, channel} (written, to be
-- indexed by the caller).
local owner = redis.call('HMGET', KEYS[3], 'o', 'c')
if not owner[1] then
  -- Never into a deleted (or never created) conversation: a run still ending after its conversation was
  -- deleted must not leave its answer behind, for whoever takes the id next to read.
  return 0
end
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[4] ~= '' then
  if exists then
    -- Decoded only on this rare path (a dead producer's answer), never on a run's ordinary writes.
    local ok, doc = pcall(cjson.decode, redis.call('HGET', KEYS[1], ARGV[1]))
    if ok and type(doc) == 'table' and type(doc.r) == 'table' and doc.r.runId == ARGV[4] then
      return -1
    end
  end
end
if not exists then
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'u', ARGV[3])
if #KEYS == 5 and owner[1] == ARGV[6] and owner[2] == ARGV[7] then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
  return 1
end
return {owner[1], owner[2]}
