-- Create a schedule, or replace one (its definition and next tick; its counters and last
-- item stay, and so does a pause).
-- KEYS: sched names due old_due
-- ARGV: name replace old_queue first_tick fields*
-- REPLY OK: created
-- REPLY EXISTS
-- REPLY RETRY
-- sched: the schedule's hash; names: the namespace's sorted set of schedule names; due: the
-- due index of its queue; old_due: that of the queue it had (when replacing; else as due).
-- replace: '1' to replace an existing one; old_queue: the queue it had as the caller read it
-- ('' for none); first_tick: ms, '' when the expression never matches; fields: the
-- definition's field/value pairs. created: 1 created, 0 replaced. EXISTS: and replace not
-- asked; RETRY: it changed since the caller read it.
local sched, names, due, old_due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, replace, old_queue, first = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local exists = redis.call('EXISTS', sched) == 1
if exists and replace ~= '1' then return {'EXISTS'} end
if (redis.call('HGET', sched, 'queue') or '') ~= old_queue then return {'RETRY'} end
if first ~= '' and not tonumber(first) then return redis.error_reply('bad first tick') end

local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if exists then
  redis.call('ZREM', old_due, name)
  redis.call('HDEL', sched, 'dtick', 'dout', 'dmark')
  redis.call('HINCRBY', sched, 'ver', 1)
else
  redis.call('HSET', sched, 'created', now, 'ver', 1, 'fired', 0, 'skipped', 0, 'paused', 0)
end
redis.call('HSET', sched, unpack(fields))
if first == '' then
  redis.call('HDEL', sched, 'next')
else
  redis.call('HSET', sched, 'next', first)
  if redis.call('HGET', sched, 'paused') ~= '1' then redis.call('ZADD', due, first, name) end
end
redis.call('ZADD', names, 0, name)
if exists then return {'OK', 0} end
return {'OK', 1}
