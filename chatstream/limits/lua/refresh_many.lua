-- refresh.lua for many leases in one call (a process renews all its runs' slots at once).
-- KEYS[i] lease set of lease i; ARGV: now (ms), ttl (ms), then the member of each lease.
-- Returns one character per lease: '1' extended, '0' already expired or released (never re-taken).
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS do
    local score = tonumber(redis.call('ZSCORE', KEYS[i], ARGV[i + 2]))
    if score and score > now then
        redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[i + 2])
        -- Every lease has the same TTL (one deployment, one setting), so this deadline is the set's latest.
        redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(ttl)))
        out[#out + 1] = '1'
    else
        out[#out + 1] = '0'
    end
end
return table.concat(out)
