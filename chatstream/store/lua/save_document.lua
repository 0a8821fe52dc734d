-- Append a version of a document, keeping its created_at strictly increasing. KEYS: records hash (created_at
-- -> record), times sorted set (created_at, scored by itself). ARGV: created_at (epoch ms), record.
-- Returns the created_at stored, as a string: the one given, or 1 ms after the latest version when the one
-- given is not later than it (two saves in one millisecond).
local at = tonumber(ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= at then
  at = tonumber(last[2]) + 1
end
local field = string.format('%.0f', at)
redis.call('HSET', KEYS[1], field, ARGV[2])
redis.call('ZADD', KEYS[2], field, field)
return field
