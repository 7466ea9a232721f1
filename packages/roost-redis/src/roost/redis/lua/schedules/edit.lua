-- Change a schedule: pause, resume, remove, or record an item that run-now made.
-- KEYS: sched names due
-- ARGV: op name queue arg
-- REPLY OK
-- REPLY SAME
-- REPLY GONE
-- REPLY RETRY
-- sched: the schedule's hash; names: the namespace's sorted set of schedule names; due: the
-- due index of its queue. op: 'pause', 'resume', 'remove' or 'ran'; queue: its queue as the
-- caller read it; arg: for 'resume' its next tick (ms; '' for none), for 'ran' the item's
-- work id. SAME: already paused, or already running; RETRY: its queue changed since the
-- caller read it.
local sched, names, due = KEYS[1], KEYS[2], KEYS[3]
local op, name, queue, arg = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', sched) == 0 then return {'GONE'} end
if redis.call('HGET', sched, 'queue') ~= queue then return {'RETRY'} end
local paused = redis.call('HGET', sched, 'paused') == '1'
-- A tick decided but not yet carried out (a worker died between decide and advance) is
-- carried out whatever happens to the schedule after it came due: it stays in the due index
-- through a pause, and a resume lets it finish before the schedule goes on ('rnext', read
-- by advance.lua).
local d = redis.call('HMGET', sched, 'dtick', 'next')
local pending = d[1] and d[1] == d[2]

if op == 'pause' then
  if paused then return {'SAME'} end
  redis.call('HSET', sched, 'paused', 1)
  if not pending then redis.call('ZREM', due, name) end
elseif op == 'resume' then
  if not paused then return {'SAME'} end
  if arg ~= '' and not tonumber(arg) then return redis.error_reply('bad next tick') end
  redis.call('HSET', sched, 'paused', 0)
  if pending then
    redis.call('HSET', sched, 'rnext', arg == '' and '-' or arg)
    redis.call('ZADD', due, d[2], name)
    return {'OK'}
  end
  redis.call('HDEL', sched, 'dtick', 'dout', 'dmark', 'rnext')
  if arg == '' then
    redis.call('HDEL', sched, 'next')
  else
    redis.call('HSET', sched, 'next', arg)
    redis.call('ZADD', due, arg, name)
  end
elseif op == 'remove' then
  redis.call('DEL', sched)
  redis.call('ZREM', names, name)
  redis.call('ZREM', due, name)
elseif op == 'ran' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', sched, 'last', arg, 'lout', 'run-now', 'lat', now)
else
  return redis.error_reply('unknown op ' .. op)
end
return {'OK'}
