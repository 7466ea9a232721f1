-- The start of a tick pass: the schedules of one queue that are due by the server's clock.
-- A pass that comes more than ARGV[1] ms after the previous one (or the first pass ever)
-- marks every tick due by now as missed: no worker was looking at the schedules when they
-- came due (see roost/redis/ticks.py).
-- KEYS: 1 the queue's due index, 2 the queue's schedule clock hash.
-- ARGV: 1 the gap (ms) after which pending ticks count as missed, 2 at most this many rows.
-- Returns {now (ms), missed mark ('' none), the next tick after now ('' none),
-- name1, tick1, name2, tick2, ...}.
local due, clock = KEYS[1], KEYS[2]
local gap, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local seen = tonumber(redis.call('HGET', clock, 'seen') or '')
if not seen or now - seen > gap then redis.call('HSET', clock, 'missed', now) end
redis.call('HSET', clock, 'seen', now)
local out = {now, redis.call('HGET', clock, 'missed') or ''}
local later = redis.call('ZRANGEBYSCORE', due, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
out[3] = later[2] or ''
local rows = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
for _, v in ipairs(rows) do out[#out + 1] = v end
return out
