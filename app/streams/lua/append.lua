-- Append one batch of frames as one entry. KEYS: stream, meta.
-- ARGV: seq (0 = unchecked), final ('1'/'0'), frames joined by '\n', frame count, maxlen, ttl_ms, idle_ms.
-- Returns 1 appended, 0 duplicate (a client retry of a batch that was already applied), -1 not open.
-- `seq` makes the call idempotent: redis-py retries a command whose reply was lost to a dropped
-- connection, and without it that retry would repeat every token of the batch.
local meta = redis.call('HMGET', KEYS[2], 'run', 'done', 'seq')
if not meta[1] then
  return -1
end
local seq = tonumber(ARGV[1])
if seq > 0 and tonumber(meta[3] or '0') >= seq then
  return 0
end
if meta[2] == '1' then
  return -1
end
local final = ARGV[2] == '1'
local fields = {}
if ARGV[4] ~= '0' then
  fields[#fields + 1] = 'f'
  fields[#fields + 1] = ARGV[3]
end
if final then
  fields[#fields + 1] = 'd'
  fields[#fields + 1] = '1'
end
if #fields > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
end
local ttl = ARGV[7]
if final then
  ttl = ARGV[6]
  redis.call('HSET', KEYS[2], 'done', '1', 'seq', ARGV[1])
elseif seq > 0 then
  redis.call('HSET', KEYS[2], 'seq', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
