-- The most recent messages, oldest first. KEYS: messages hash, message order list.
-- ARGV: how many ('-1' = all).
local n = tonumber(ARGV[1])
local ids
if n < 0 then
  ids = redis.call('LRANGE', KEYS[2], 0, -1)
elseif n == 0 then
  return {}
else
  ids = redis.call('LRANGE', KEYS[2], -n, -1)
end
local out = {}
for i = 1, #ids, 1000 do
  local docs = redis.call('HMGET', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
  for _, doc in ipairs(docs) do
    out[#out + 1] = doc
  end
end
return out
