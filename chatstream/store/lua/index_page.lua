-- One window of a user's conversation index, most recent first. KEYS: the index sorted set.
-- ARGV: cursor id ('' = from the most recent), mode ('after': the entries that follow the cursor, or with no
-- cursor from the top; 'before': the ones that precede it, nearest first in the walk), entries already
-- walked past in this listing, window size.
-- Returns a flat list id, score, id, score, ... in recency order (for 'before', the window nearest to the
-- cursor that has not been walked yet; the caller walks it backwards), or false when the cursor is not in
-- the index. The walk is counted from the cursor, so entries added above it meanwhile shift nothing.
local skip, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local rank = -1
if ARGV[1] ~= '' then
  rank = redis.call('ZREVRANK', KEYS[1], ARGV[1])
  if not rank then
    return false
  end
end
if ARGV[2] == 'before' then
  local stop = rank - 1 - skip
  if stop < 0 then
    return {}
  end
  return redis.call('ZREVRANGE', KEYS[1], math.max(0, stop - count + 1), stop, 'WITHSCORES')
end
local start = rank + 1 + skip
return redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
