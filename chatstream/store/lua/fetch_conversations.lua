-- The listing's second step: the conversations an index page named. KEYS: their hashes (on a single Redis
-- all of them; on a Redis Cluster those of one slot, the caller pipelining one call per slot).
-- ARGV: user id, the channel of the index read ('' for the user's whole index), channel filter ('' = any),
-- visibility filter ('' = any).
-- Returns two items per key: the record and updated_at when it is listed; '' and updated_at when it is
-- filtered out; '' and '' when the entry is stale (no hash, or no longer this user's or this index's channel).
local out = {}
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'd', 'u', 'o', 'c', 'v')
  if not h[1] or h[3] ~= ARGV[1] or (ARGV[2] ~= '' and h[4] ~= ARGV[2]) then
    out[#out + 1] = ''
    out[#out + 1] = ''
  else
    local wanted = ARGV[3] == '' or h[4] == ARGV[3]
    if wanted and ARGV[4] ~= '' then
      local v = h[5]
      if not v then -- written before the hash kept visibility: read it from the record (default private)
        local ok, doc = pcall(cjson.decode, h[1])
        v = (ok and type(doc) == 'table' and type(doc.r) == 'table' and doc.r.visibility) or 'private'
      end
      wanted = v == ARGV[4]
    end
    out[#out + 1] = wanted and h[1] or ''
    out[#out + 1] = h[2] or ''
  end
end
return out
