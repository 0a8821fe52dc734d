-- Start a stream for a new run. KEYS: stream, meta. ARGV: run_id, idle_ms.
-- The old entries are trimmed rather than the key deleted: the key keeps its last id, so the new run's
-- ids are strictly greater than any cursor a reader of the old run holds. The first entry carries the
-- run id (`r`), which is how a reader blocked on the old run notices the replacement.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'run', ARGV[1], 'done', '0', 'seq', '0')
redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
