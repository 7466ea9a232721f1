-- Carry out a decided tick: move the schedule to its next tick (a compare-and-set on the tick
-- and its recorded outcome) and record the outcome. The item a fired tick made was enqueued
-- before, under the tick's idempotency key: a worker that dies in between leaves the
-- decision in place, and the next worker enqueues the same key again (which creates nothing)
-- and comes here.
-- KEYS: sched due
-- ARGV: name tick outcome next_tick work_id
-- REPLY OK
-- REPLY GONE
-- REPLY MOVED
-- sched: the schedule's hash; due: the due index of its queue. next_tick: ms, '' when the
-- expression never matches again; work_id: the item's, '' when the tick made none. MOVED:
-- another worker carried it out, or it was changed.
local sched, due = KEYS[1], KEYS[2]
local name, tick, outcome, nxt, work_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if nxt ~= '' and not (tonumber(nxt) and tonumber(nxt) > tonumber(tick)) then
  return redis.error_reply('the next tick must come after the tick')
end
local f = redis.call('HMGET', sched, 'next', 'dtick', 'dout', 'paused', 'engine')
if not f[5] then return {'GONE'} end
if f[1] ~= tick or f[2] ~= tick or f[3] ~= outcome then return {'MOVED'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Resumed while this tick was pending: go on from the resume's next tick, not from the
-- ticks that fell in the pause (see edit.lua).
local resumed = redis.call('HGET', sched, 'rnext')
if resumed == '-' then
  nxt = ''
elseif resumed and nxt ~= '' and tonumber(nxt) < tonumber(resumed) then
  nxt = resumed
end

redis.call('HDEL', sched, 'dtick', 'dout', 'dmark', 'rnext')
if nxt == '' then
  redis.call('HDEL', sched, 'next')
  redis.call('ZREM', due, name)
else
  redis.call('HSET', sched, 'next', nxt)
  if f[4] ~= '1' then redis.call('ZADD', due, nxt, name) end
end
redis.call('HSET', sched, 'ltick', tick, 'lout', outcome, 'lat', now)
if work_id ~= '' then
  redis.call('HSET', sched, 'last', work_id)
  redis.call('HINCRBY', sched, 'fired', 1)
else
  redis.call('HINCRBY', sched, 'skipped', 1)
end
return {'OK'}
