-- Store a suspended run with its conversation. KEYS: the conversation's suspended-runs hash (run id ->
-- "<expires at, ms> <record>"). ARGV: run id, record, ttl_ms, now (ms).
-- Fields do not expire by themselves: an expired one reads as missing and is pruned here. The hash lives
-- as long as its newest run (every run gets the same ttl).
local now = tonumber(ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local expires = tonumber(string.match(fields[i + 1], '^(%d+) '))
  if not expires or expires <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d ', now + tonumber(ARGV[3])) .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
