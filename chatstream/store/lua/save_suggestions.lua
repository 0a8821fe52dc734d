-- Store suggestions on one document, replacing any with the same id. KEYS: suggestions hash (id -> record),
-- suggestions by version sorted set (id, scored by the created_at of its version). ARGV: id, the version's
-- created_at (epoch ms), record, repeated. Returns 1.
for i = 1, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
end
return 1
