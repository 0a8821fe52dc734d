-- A document's versions, oldest first; with ARGV[1] = 'last' only the latest. KEYS: records hash, times
-- sorted set. Returns {created_at, record, ...} (a record never missing: both keys change in one script).
local ats
if ARGV[1] == 'last' then
  ats = redis.call('ZRANGE', KEYS[2], -1, -1)
else
  ats = redis.call('ZRANGE', KEYS[2], 0, -1)
end
local out = {}
for i = 1, #ats, 1000 do
  local chunk = {unpack(ats, i, math.min(i + 999, #ats))}
  local records = redis.call('HMGET', KEYS[1], unpack(chunk))
  for j = 1, #chunk do
    out[#out + 1] = chunk[j]
    out[#out + 1] = records[j] or ''
  end
end
return out
