-- A user's conversations by recency. KEYS: index zset (the user's `convs` index whenever a cursor is given).
-- ARGV: prefix, limit, user id, channel ('' = any), visibility ('' = any), cursor mode ('' | 'after' |
-- 'before'), cursor id. Returns a flat list record, updated_at, record, updated_at, ..., most recent first.
-- Each hit is checked against the hash's owner, channel and visibility (a user id containing ':chan:' could
-- make two index keys collide), and index entries whose conversation is gone are dropped.
-- `after`: the conversations that follow the cursor in recency order; `before`: the nearest ones that
-- precede it (walked backwards from the cursor, returned in recency order).
local limit = tonumber(ARGV[2])
local out, stale = {}, {}
local function wanted(h)
  if h[3] ~= ARGV[3] or (ARGV[4] ~= '' and h[4] ~= ARGV[4]) then
    return false
  end
  if ARGV[5] ~= '' then
    local v = h[5]
    if not v then -- written before the hash kept visibility: read it from the record (default private)
      local ok, doc = pcall(cjson.decode, h[1])
      v = (ok and type(doc) == 'table' and type(doc.r) == 'table' and doc.r.visibility) or 'private'
    end
    if v ~= ARGV[5] then
      return false
    end
  end
  return true
end
local function visit(id)
  local h = redis.call('HMGET', ARGV[1] .. ':conv:' .. id, 'd', 'u', 'o', 'c', 'v')
  if not h[1] then
    stale[#stale + 1] = id
    return nil
  end
  if wanted(h) then
    return h
  end
  return nil
end
local start = 0
if ARGV[6] ~= '' then
  local rank = redis.call('ZREVRANK', KEYS[1], ARGV[7])
  if not rank then
    return {}
  end
  start = rank + 1
  if ARGV[6] == 'before' then
    local found = {}
    local stop = rank - 1
    while stop >= 0 and #found < limit do
      local from = math.max(0, stop - limit + 1)
      local ids = redis.call('ZREVRANGE', KEYS[1], from, stop)
      for i = #ids, 1, -1 do
        local h = visit(ids[i])
        if h and #found < limit then
          found[#found + 1] = h
        end
      end
      stop = from - 1
    end
    for i = #found, 1, -1 do
      out[#out + 1] = found[i][1]
      out[#out + 1] = found[i][2]
    end
    for _, id in ipairs(stale) do
      redis.call('ZREM', KEYS[1], id)
    end
    return out
  end
end
while #out < 2 * limit do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + limit - 1)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local h = visit(id)
    if h and #out < 2 * limit then
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
