-- Delete the versions of a document created after a timestamp (strictly later), and the suggestions made for
-- them, in one step. KEYS: records hash, times sorted set, suggestions hash (id -> record), suggestions by
-- version sorted set (id, scored by the created_at of its version). ARGV: timestamp (epoch ms).
-- Returns the deleted versions as {created_at, record, ...}, oldest first.
local after = '(' .. ARGV[1]
local ats = redis.call('ZRANGEBYSCORE', KEYS[2], after, '+inf')
local out = {}
for i = 1, #ats, 1000 do
  local chunk = {unpack(ats, i, math.min(i + 999, #ats))}
  local records = redis.call('HMGET', KEYS[1], unpack(chunk))
  for j = 1, #chunk do
    out[#out + 1] = chunk[j]
    out[#out + 1] = records[j] or ''
  end
  redis.call('HDEL', KEYS[1], unpack(chunk))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], after, '+inf')
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], after, '+inf')
for i = 1, #ids, 1000 do
  redis.call('HDEL', KEYS[3], unpack(ids, i, math.min(i + 999, #ids)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], after, '+inf')
return out
