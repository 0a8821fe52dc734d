-- Store a vote on a message of the conversation, replacing an earlier one. KEYS: messages hash, votes hash.
-- ARGV: message id, record. Returns 1 when stored, 0 when the message is not there.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
