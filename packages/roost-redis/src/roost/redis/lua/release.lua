-- Give a leased item back without using an attempt (graceful stop, a step cut short by the
-- worker).
-- KEYS: @states @leases @due @events @saq_queued @saq_incomplete @engines meta job res* resw*
-- ARGV: @saq_name @events_maxlen @worker @engine work_id token epoch op dispatch job_suffix
--     nres reason
-- REPLY OK: woken
-- REPLY DUP
-- REPLY STALE
-- REPLY GONE
-- REPLY CANCELLED: woken
local meta, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2]
local work_id, token, epoch, op = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3],
  ARGV[NS_ARGS + 4]
local dispatch, saq_key = ARGV[NS_ARGS + 5], ARGV[NS_ARGS + 6]
local nres, reason = tonumber(ARGV[NS_ARGS + 7]), ARGV[NS_ARGS + 8]
local res_keys, resw_keys = res_block(NS_KEYS + 3, nres)

local early, f = holder_call(meta, work_id, token, epoch, op, {'att', 'step', 'v'},
  res_keys, resw_keys)
if early then return early end

redis.call('HSET', meta, 'att', math.max(tonumber(f.att) - 1, 0), 'op', op)
local woken = release_lease(meta, work_id, res_keys, resw_keys)
queue_item(meta, work_id, 'running', job, saq_key, dispatch, true)
local pause = meta_get(meta, 'pause')  -- pause: asked while the step ran (see pause.lua)
if pause then pause_item(meta, work_id, pause) end
emit('released', work_id, f.step, tonumber(f.v), cjson.encode({reason = reason}))
return {'OK', woken}
