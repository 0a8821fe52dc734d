-- Index a conversation for its user, or take it out. KEYS: the first n index sorted sets get the id with
-- the score, the others lose it (all of one user: one slot). ARGV: n, score, conversation id.
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  if i <= n then
    redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  else
    redis.call('ZREM', KEYS[i], ARGV[3])
  end
end
return 1
