-- Store a suspended run and register it under its conversation for the delete cascade.
-- KEYS: run hash, the conversation's suspended-run set. ARGV: run id, conversation id, record, ttl_ms.
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'c', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
