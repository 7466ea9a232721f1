-- Decide what a schedule's due tick does, once for every worker: the first caller records
-- the outcome, later callers (other workers, or a worker after a crash) get the same one.
-- KEYS: sched due clock last_meta
-- ARGV: name tick last version finished_states
-- REPLY DECIDED: outcome mark
-- REPLY GONE
-- REPLY MOVED: next_tick
-- REPLY PAUSED
-- REPLY RETRY
-- sched: the schedule's hash; due: the due index of its queue; clock: its queue's schedule
-- clock hash; last_meta: the meta hash of its last item as the caller read it (the
-- schedule's own hash when it has none). tick: its 'next' as read; last: its last work id
-- as read ('' none); version: its definition version as read; finished_states:
-- space-separated. Outcomes: 'fired', 'fired-missed' (one item for ticks missed while no
-- worker looked), 'skipped-missed' (missed ticks with the skip policy), 'skipped-running'
-- (the last item is unfinished and the schedule skips while it runs). mark: the missed mark
-- ('' unless the tick was missed). GONE also drops a stale index entry; MOVED: another
-- worker went on (next_tick: '' for none); RETRY: its last item or definition changed since
-- read.
local sched, due, clock, last_meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, tick, last, ver = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', sched, 'next', 'paused', 'dtick', 'dout', 'dmark', 'last', 'missed',
  'skiprun', 'ver', 'engine')
if not f[10] then
  redis.call('ZREM', due, name)
  return {'GONE'}
end
if f[1] ~= tick then return {'MOVED', f[1] or ''} end
if (f[6] or '') ~= last or f[9] ~= ver then return {'RETRY'} end
if f[3] == tick then return {'DECIDED', f[4], f[5] or ''} end
if f[2] == '1' then return {'PAUSED'} end

local terminal = {}
for s in string.gmatch(ARGV[5], '%S+') do terminal[s] = true end
local mark = redis.call('HGET', clock, 'missed')
local missed = mark and tonumber(tick) <= tonumber(mark)
if not missed then mark = '' end
local outcome = missed and 'fired-missed' or 'fired'
if missed and f[7] == 'skip' then
  outcome = 'skipped-missed'
elseif f[8] == '1' and last ~= '' then
  local state = redis.call('HGET', last_meta, 'state')
  if state and not terminal[state] then outcome = 'skipped-running' end
end
redis.call('HSET', sched, 'dtick', tick, 'dout', outcome, 'dmark', mark)
return {'DECIDED', outcome, mark}
