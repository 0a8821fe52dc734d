-- Append one batch of frames to each of several streams, in one round trip (the instance's write batcher).
-- KEYS: stream_1, meta_1, stream_2, meta_2, ... (two per batch; a stream may appear more than once, its
-- batches in order). ARGV: maxlen, ttl_ms, idle_ms, then five per batch: run ('' = unchecked), seq (0 =
-- unchecked), final ('1'/'0'), frame count, frames joined by '\n'.
-- Returns one reply per batch: the id of the entry it created ('' when it created none: no frames and
-- not final), or -1 when the stream is not open (missing, ended, or taken over by another run).
-- `seq` makes a batch idempotent: redis-py retries a command whose reply was lost to a dropped connection,
-- and without it that retry would repeat every token of every batch in the call. Each entry carries its
-- batch number (`s`), so the retry still answers with the ids the first attempt created (the producing
-- instance records them in its local copy): it looks among the last `applied - seq + 1` entries, since a
-- batch makes at most one entry and a retry comes right after its call.
local maxlen, ttl_ms, idle_ms = ARGV[1], ARGV[2], ARGV[3]

local function applied_id(stream, seq, back)
  for _, entry in ipairs(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', back)) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 's' and tonumber(fields[j + 1]) == seq then
        return entry[1]
      end
    end
  end
  return ''
end

local function append(stream, meta_key, run, seq, final, count, blob)
  local meta = redis.call('HMGET', meta_key, 'run', 'done', 'seq')
  if not meta[1] or (run ~= '' and meta[1] ~= run) then
    return -1
  end
  local applied = tonumber(meta[3] or '0')
  if seq > 0 and applied >= seq then
    return applied_id(stream, seq, applied - seq + 1)
  end
  if meta[2] == '1' then
    return -1
  end
  local fields = {}
  if count ~= '0' then
    fields[#fields + 1] = 'f'
    fields[#fields + 1] = blob
  end
  if final then
    fields[#fields + 1] = 'd'
    fields[#fields + 1] = '1'
  end
  if seq > 0 and #fields > 0 then
    fields[#fields + 1] = 's'
    fields[#fields + 1] = seq
  end
  local id = ''
  if #fields > 0 then
    id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  end
  local ttl = idle_ms
  if final then
    ttl = ttl_ms
    redis.call('HSET', meta_key, 'done', '1', 'seq', seq)
  elseif seq > 0 then
    redis.call('HSET', meta_key, 'seq', seq)
  end
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', meta_key, ttl)
  return id
end

local out = {}
for i = 0, #KEYS / 2 - 1 do
  local a = 3 + 5 * i
  out[i + 1] = append(
    KEYS[2 * i + 1], KEYS[2 * i + 2], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3] == '1', ARGV[a + 4], ARGV[a + 5]
  )
end
return out
