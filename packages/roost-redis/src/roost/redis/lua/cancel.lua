-- Cancel an unfinished item. A running item is marked cancelled at once; its holder's next
-- renewal or commit is refused and releases the lease.
-- KEYS: @states @due @events @stats meta
-- ARGV: @events_maxlen @worker work_id
-- REPLY OK: previous
-- REPLY GONE
-- REPLY TERMINAL: state
local meta, work_id = KEYS[NS_KEYS + 1], ARGV[NS_ARGS + 1]
local f = redis.call('HMGET', meta, 'state', 'step', 'v')
local state = f[1]
if not state then return {'GONE'} end
if TERMINAL[state] then return {'TERMINAL', state} end
if state == 'running' then
  redis.call('HSET', meta, 'cxl', 1)
else
  redis.call('ZREM', DUE, work_id)
  redis.call('HDEL', meta, 'due')
end
set_state(meta, work_id, state, 'cancelled')
emit_final(meta, 'cancelled', work_id, f[2], tonumber(f[3]), cjson.encode({previous = state}))
stat('cancelled')
child_finished(meta, work_id, 'cancelled') -- child work: tell the parent
return {'OK', state}
