-- Pause an unfinished item: it runs no new step until resumed, and keeps its place. An item
-- that holds no lease is parked in 'paused' at once (see pause_item); a running one is
-- marked ('pause') and its step may finish and commit: that commit parks it instead of
-- going on. reason: 'operator' or 'budget'.
-- KEYS: @states @due @events meta
-- ARGV: @events_maxlen @worker work_id reason
-- REPLY OK: previous
-- REPLY GONE
-- REPLY TERMINAL: state
-- REPLY ALREADY: state
local meta = KEYS[NS_KEYS + 1]
local work_id, reason = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2]
local f = redis.call('HMGET', meta, 'state', 'pause', 'step', 'v')
local state = f[1]
if not state then return {'GONE'} end
if TERMINAL[state] then return {'TERMINAL', state} end
if state == 'paused' or (state == 'running' and f[2]) then return {'ALREADY', state} end
if state == 'running' then
  redis.call('HSET', meta, 'pause', reason)
else
  pause_item(meta, work_id, reason)
end
emit('paused', work_id, f[3], tonumber(f[4]), cjson.encode({reason = reason, previous = state}))
return {'OK', state}
