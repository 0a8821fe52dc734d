-- Keep the `keep` most recent messages, and their votes. KEYS: messages hash, message order list, votes hash.
-- ARGV: keep. Returns {kept, deleted}.
local n = redis.call('LLEN', KEYS[2])
local keep = math.max(0, tonumber(ARGV[1]))
if keep >= n then
  return {n, 0}
end
local drop = n - keep
local ids = redis.call('LRANGE', KEYS[2], 0, drop - 1)
for i = 1, #ids, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
  redis.call('HDEL', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[3], unpack(chunk))
end
if keep == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
else
  redis.call('LTRIM', KEYS[2], drop, -1)
end
return {keep, drop}
