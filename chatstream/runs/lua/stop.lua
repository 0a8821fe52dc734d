-- Ask a run to stop. KEYS: the run's stop request, the run's stop channel (a channel, not a key: passed in
-- KEYS so that the script's slot covers it, as Redis Cluster requires of SPUBLISH). ARGV: request ttl_ms,
-- sharded ('1': SPUBLISH, for a Redis Cluster; '0': PUBLISH).
-- The request key is written before the publish and inside the same script, so a waiter that subscribes
-- after the message went out still finds the key when it looks right after subscribing.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
if ARGV[2] == '1' then
  redis.call('SPUBLISH', KEYS[2], '1')
else
  redis.call('PUBLISH', KEYS[2], '1')
end
return 1
