-- One rate-limit decision over several rules, atomically: check every rule, then charge all or nothing.
-- The arithmetic mirrors app/limits/memory.py exactly (the contract suite runs against both).
-- Times are in ms, taken from the caller's clock (ARGV[1]) so that tests can drive time; instances need
-- synchronised clocks (NTP), a skew of d ms moves window edges by d ms but never breaks the counting.
--
-- KEYS[i]       state key of rule i (1..n)
-- KEYS[n+j]     receipt key of the j-th counter rule that has one
-- ARGV[1]       now (ms)
-- ARGV[2]       n, the number of rules
-- ARGV[2+i]     rule i packed as "kind limit param cost receipt_ttl_ms" (few arguments and one short reply
--               keep the client's encoding and RESP parsing, most of a decision's cost, small)
-- ARGV[2+n+k]   the member of the k-th lease rule (any string, so not packed)
-- On a single Redis one call carries every rule; on a Redis Cluster one call carries the rules of one slot
-- (a user's, or a client address's), all slots at once, and refund.lua gives back what a slot charged when
-- another refused (chatstream/limits/redis.py).
--
-- Returns one string: "allowed" then per rule "allowed remaining reset_ms retry_ms", space-separated.

local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out = {1}
local plan = {}
local next_receipt = n + 1
local next_member = n + 3

for i = 1, n do
    local kind, limit, param, cost, receipt_ttl = string.match(ARGV[2 + i], '^(%a+) (%S+) (%S+) (%S+) (%S+)$')
    limit = tonumber(limit)
    param = tonumber(param)
    cost = tonumber(cost)
    receipt_ttl = tonumber(receipt_ttl)
    local member = ''
    if kind == 'lease' then
        member = ARGV[next_member]
        next_member = next_member + 1
    end
    local key = KEYS[i]
    local ok, remaining, reset, retry = 1, 0, 0, 0

    if kind == 'gcra' then
        local interval = param / limit
        local eps = math.min(interval / 2, 1)
        local tat = tonumber(redis.call('GET', key)) or now
        if tat < now then tat = now end
        local new_tat = tat + cost * interval
        local allow_at = new_tat - param
        if allow_at > now + eps then
            ok = 0
            retry = allow_at - now
            remaining = math.max(0, math.floor((now + param - tat) / interval + 1e-9))
            reset = tat - now
        else
            remaining = math.max(0, math.floor((now + param - new_tat) / interval + 1e-9))
            reset = new_tat - now
            plan[#plan + 1] = {'gcra', key, new_tat}
        end
    elseif kind == 'counter' then
        local count = tonumber(redis.call('GET', key)) or 0
        reset = param - now
        if count + math.max(cost, 1) > limit then
            ok = 0
            retry = reset
            remaining = math.max(0, limit - count)
        else
            remaining = limit - count - cost
            local receipt = false
            if receipt_ttl > 0 then
                receipt = KEYS[next_receipt]
                next_receipt = next_receipt + 1
            end
            plan[#plan + 1] = {'counter', key, cost, reset, receipt, receipt_ttl}
        end
    else -- lease
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
        local held = redis.call('ZSCORE', key, member)
        local count = redis.call('ZCARD', key)
        if not held and count >= limit then
            ok = 0
            local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
            retry = tonumber(first[2]) - now
            reset = retry
        else
            if not held then count = count + 1 end
            remaining = math.max(0, limit - count)
            plan[#plan + 1] = {'lease', key, now + param, member, param}
        end
    end
    if ok == 0 then out[1] = 0 end
    out[#out + 1] = string.format('%d %d %d %d', ok, remaining,
        math.max(0, math.ceil(reset - 1e-9)), math.max(0, math.ceil(retry - 1e-9)))
end

if out[1] == 1 then
    for _, p in ipairs(plan) do
        if p[1] == 'gcra' then
            redis.call('SET', p[2], string.format('%.17g', p[3]), 'PX', math.max(1, math.ceil(p[3] - now)))
        elseif p[1] == 'counter' then
            redis.call('INCRBY', p[2], p[3])
            redis.call('PEXPIRE', p[2], math.max(1, math.ceil(p[4])))
            if p[5] then
                redis.call('SET', p[5], p[3], 'PX', p[6])
            end
        else
            redis.call('ZADD', p[2], p[3], p[4])
            -- Every lease has the same TTL, so the newest deadline is the last one: the set lives that long.
            redis.call('PEXPIRE', p[2], math.max(1, math.ceil(p[5])))
        end
    end
end
return table.concat(out, ' ')
