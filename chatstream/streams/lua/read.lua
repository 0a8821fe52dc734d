-- Non-blocking read after a cursor. KEYS: stream, meta. ARGV: entry id ('' = from the start),
-- partial ('1' when the cursor points inside that entry, which is then re-read), count.
-- Returns nil when there is no stream, else {run_id, done, partial entries, following entries}.
-- XRANGE from an exclusive id is O(log n) plus what it returns: a resume costs what it replays.
local meta = redis.call('HMGET', KEYS[2], 'run', 'done')
if not meta[1] then
  return nil
end
local partial = {}
local rest
if ARGV[1] == '' then
  rest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[3])
else
  if ARGV[2] == '1' then
    partial = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
  end
  rest = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[3])
end
return {meta[1], meta[2], partial, rest}
