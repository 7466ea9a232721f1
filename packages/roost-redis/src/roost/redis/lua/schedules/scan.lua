-- The start of a tick pass: the schedules of one queue that are due by the server's clock.
-- A pass that comes more than ARGV[1] ms after the previous one (or the first pass ever)
-- marks every tick due by now as missed: no worker was looking at the schedules when they
-- came due (see roost/redis/ticks.py).
-- KEYS: due clock
-- ARGV: missed_after_ms count
-- REPLY: now missed next_tick rows*(name tick)
-- due: the queue's due index; clock: the queue's schedule clock hash. missed_after_ms: the
-- gap after which pending ticks count as missed; count: at most this many rows. now: ms;
-- missed: the missed mark ('' none); next_tick: the next tick after now ('' none).
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
