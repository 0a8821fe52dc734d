-- A conversation's votes in message order. KEYS: votes hash, message order list. Returns the records.
if redis.call('HLEN', KEYS[1]) == 0 then
  return {}
end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
local out = {}
for i = 1, #ids, 1000 do
  local docs = redis.call('HMGET', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
  for _, doc in ipairs(docs) do
    if doc then
      out[#out + 1] = doc
    end
  end
end
return out
