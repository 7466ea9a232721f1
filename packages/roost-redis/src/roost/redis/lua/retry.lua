-- Queue a failed or dead item again with fresh attempts.
-- KEYS: @states @due @events @saq_queued @saq_incomplete @engines meta job
-- ARGV: @saq_name @events_maxlen @worker @engine work_id dispatch job_suffix
-- REPLY OK: previous
-- REPLY GONE
-- REPLY CONFLICT: state
local meta, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2]
local work_id = ARGV[NS_ARGS + 1]
local f = redis.call('HMGET', meta, 'state', 'step', 'v')
if not f[1] then return {'GONE'} end
if f[1] ~= 'failed' and f[1] ~= 'dead' then return {'CONFLICT', f[1]} end
redis.call('HSET', meta, 'att', 0)
child_reopened(meta, work_id) -- child work: unfinished again for its parent
queue_item(meta, work_id, f[1], job, ARGV[NS_ARGS + 3], ARGV[NS_ARGS + 2])
emit('retried', work_id, f[2], tonumber(f[3]), cjson.encode({previous = f[1]}))
return {'OK', f[1]}
