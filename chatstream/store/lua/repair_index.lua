-- Heal a user's index after a listing found entries that disagree with their conversations (left by a
-- crash between two steps of an operation that spans slots, or by a conversation that moved or was
-- deleted). KEYS: the index. ARGV: triples id, score read, new score ('' = drop the entry).
-- Each change applies only while the entry still has the score the listing read, so an entry touched
-- meanwhile (a conversation indexed again) is left alone.
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    if ARGV[i + 2] == '' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
  end
end
return 1
