-- Renew the leases of many runs at once (one round trip per process and tick, whatever the number of runs;
-- on a Redis Cluster the caller sends one call per slot, in the same round trip).
-- KEYS: per run, its conversation's liveness lease then holding lease. ARGV: ttl_ms, hold_ms, run ids.
-- Per run: held (liveness is ours) -> extend both; liveness lapsed but the holding key still names us (we were
-- only paused and nobody claimed the conversation) -> restore liveness; otherwise (released, expired, or
-- claimed by another run) -> leave everything alone: a conversation that was let go is never re-claimed.
-- Returns one character per run, '1' held or '0' lost (a short reply: cheap to parse for 1,000 runs).
local out = {}
for i = 3, #ARGV do
  local live, held, run = KEYS[2 * i - 5], KEYS[2 * i - 4], ARGV[i]
  local holder = redis.call('GET', live)
  if holder == run or (not holder and redis.call('GET', held) == run) then
    redis.call('SET', live, run, 'PX', ARGV[1])
    redis.call('SET', held, run, 'PX', ARGV[2])
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return table.concat(out)
