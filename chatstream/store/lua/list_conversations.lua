-- A user's conversations by recency. KEYS: index zset. ARGV: prefix, limit, user id, channel ('' = any).
-- Returns a flat list record, updated_at, record, updated_at, ...
-- Each hit is checked against the hash's owner and channel (a user id containing ':chan:' could make
-- two index keys collide), and index entries whose conversation is gone are dropped.
local limit = tonumber(ARGV[2])
local out, stale = {}, {}
local start = 0
while #out < 2 * limit do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + limit - 1)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local h = redis.call('HMGET', ARGV[1] .. ':conv:' .. id, 'd', 'u', 'o', 'c')
    if not h[1] then
      stale[#stale + 1] = id
    elseif h[3] == ARGV[3] and (ARGV[4] == '' or h[4] == ARGV[4]) and #out < 2 * limit then
      out[#out + 1] = h[1]
      out[#out + 1] = h[2]
    end
  end
  start = start + limit
end
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
end
return out
