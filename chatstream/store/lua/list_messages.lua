-- The most recent messages, oldest first. KEYS: messages hash, message order list.
-- ARGV: how many ('-1' = all), and `before` ('' = none): only messages older than that one (paging back).
local n = tonumber(ARGV[1])
if n == 0 then
  return {}
end
local last = -1
if ARGV[2] ~= '' then
  local at = redis.call('LPOS', KEYS[2], ARGV[2])
  if not at or at == 0 then
    return {}
  end
  last = at - 1
end
local first = 0
if n > 0 then
  if last < 0 then
    first = -n
  else
    first = math.max(0, last - n + 1)
  end
end
local ids = redis.call('LRANGE', KEYS[2], first, last)
local out = {}
for i = 1, #ids, 1000 do
  local docs = redis.call('HMGET', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
  for _, doc in ipairs(docs) do
    out[#out + 1] = doc
  end
end
return out
