-- Undo what a charging hit.lua call did (Redis Cluster only: a decision over rules of several slots charges
-- every slot at once, and gives back what some slots charged when another refused; see limits/redis.py).
-- KEYS and ARGV exactly as the hit.lua call being undone.
-- GCRA: the TAT moves back by what the request cost (other requests' charges since then stay).
-- Counter: the cost is taken back (never below 0) and the reservation's receipt removed. Lease: released.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local next_receipt = n + 1
local next_member = n + 3
for i = 1, n do
    local kind, limit, param, cost, receipt_ttl = string.match(ARGV[2 + i], '^(%a+) (%S+) (%S+) (%S+) (%S+)$')
    limit = tonumber(limit)
    param = tonumber(param)
    cost = tonumber(cost)
    local key = KEYS[i]
    if kind == 'gcra' then
        local tat = tonumber(redis.call('GET', key))
        if tat then
            local back = tat - cost * param / limit
            if back <= now then
                redis.call('DEL', key)
            else
                redis.call('SET', key, string.format('%.17g', back), 'PX', math.max(1, math.ceil(back - now)))
            end
        end
    elseif kind == 'counter' then
        if tonumber(receipt_ttl) > 0 then
            redis.call('DEL', KEYS[next_receipt])
            next_receipt = next_receipt + 1
        end
        if cost > 0 and redis.call('EXISTS', key) == 1 then
            if redis.call('DECRBY', key, cost) < 0 then
                redis.call('SET', key, 0, 'KEEPTTL')
            end
        end
    else
        redis.call('ZREM', key, ARGV[next_member])
        next_member = next_member + 1
    end
end
return 1
