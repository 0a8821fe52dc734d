-- Release a lease and move a counter reservation to real usage, exactly once (the receipt is consumed).
-- KEYS[1] lease set, KEYS[2] receipt, KEYS[3] counter (unused ones repeat a harmless name; flags say which).
-- ARGV: has_lease, member, has_receipt, actual (-1 keeps the reserved estimate).
if ARGV[1] == '1' then
    redis.call('ZREM', KEYS[1], ARGV[2])
end
if ARGV[3] == '1' then
    local reserved = tonumber(redis.call('GET', KEYS[2]))
    if reserved then
        redis.call('DEL', KEYS[2])
        local actual = tonumber(ARGV[4])
        -- A counter whose window has ended (the day rolled over) has expired: nothing left to correct.
        if actual >= 0 and actual ~= reserved and redis.call('EXISTS', KEYS[3]) == 1 then
            local value = redis.call('INCRBY', KEYS[3], actual - reserved)
            if value < 0 then
                redis.call('SET', KEYS[3], 0, 'KEEPTTL')
            end
        end
    end
end
return 1
