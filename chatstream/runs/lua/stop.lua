-- Ask the conversation's active run to stop. KEYS: lease. ARGV: key prefix, stop-request ttl_ms.
-- The request key is written before the PUBLISH and inside the same script, so a waiter that subscribes
-- after the message went out still finds the key when it looks right after subscribing.
local run = redis.call('GET', KEYS[1])
if not run then
  return nil
end
redis.call('SET', ARGV[1] .. ':stopreq:' .. run, '1', 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[1] .. ':stop:' .. run, '1')
return run
