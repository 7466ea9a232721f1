-- Run a finished item again from a snapshot: the new snapshot becomes version+1 (versions
-- stay contiguous), or with no snapshot ('') the engine's init_snapshot runs again.
-- KEYS: @states @due @events @saq_queued @saq_incomplete @engines meta snap hist job
-- ARGV: @saq_name @events_maxlen @worker @engine work_id expected_version snapshot_json
--     dispatch job_suffix history from_version
-- REPLY OK: version
-- REPLY GONE
-- REPLY CONFLICT: state version
local meta, snap_key, hist_key, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2],
  KEYS[NS_KEYS + 3], KEYS[NS_KEYS + 4]
local work_id, expected = ARGV[NS_ARGS + 1], tonumber(ARGV[NS_ARGS + 2])
local snap_json, history = ARGV[NS_ARGS + 3], tonumber(ARGV[NS_ARGS + 6])
local f = redis.call('HMGET', meta, 'state', 'v', 'ltok', 'step')
if not f[1] then return {'GONE'} end
if not TERMINAL[f[1]] or f[3] or tonumber(f[2]) ~= expected then
  return {'CONFLICT', f[1], f[2]}
end
local old = redis.call('GET', snap_key)
if history > 0 and old then
  redis.call('LPUSH', hist_key, old)
  redis.call('LTRIM', hist_key, 0, history - 1)
end
local version = expected
if snap_json == '' then
  redis.call('DEL', snap_key)
else
  version = expected + 1
  redis.call('SET', snap_key, snap_json)
end
redis.call('HSET', meta, 'v', version, 'att', 0)
redis.call('HDEL', meta, 'err')
child_reopened(meta, work_id) -- child work: unfinished again for its parent
queue_item(meta, work_id, f[1], job, ARGV[NS_ARGS + 5], ARGV[NS_ARGS + 4])
emit('replayed', work_id, f[4], version, cjson.encode({from_version = ARGV[NS_ARGS + 7]}))
return {'OK', version}
