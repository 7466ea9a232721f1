-- Record a failed attempt; the snapshot is not touched.
-- KEYS: @states @leases @due @events @stats meta res* resw*
-- ARGV: @events_maxlen @worker work_id token epoch op error_json backoff_ms terminal nres data
--     retry_data
-- REPLY RETRYING: due_ms woken
-- REPLY DEAD: woken
-- REPLY FAILED: woken
-- REPLY DUP
-- REPLY STALE
-- REPLY GONE
-- REPLY CANCELLED: woken
-- terminal: '1' when the item cannot run (it goes to 'failed' at once). data: the event
-- data of a final failure ('failed' or 'dead': no retry follows, so it carries no delay);
-- retry_data: that of a retry.
local meta = KEYS[NS_KEYS + 1]
local work_id, token, epoch, op = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3],
  ARGV[NS_ARGS + 4]
local error_json, backoff = ARGV[NS_ARGS + 5], tonumber(ARGV[NS_ARGS + 6])
local terminal, nres, data = ARGV[NS_ARGS + 7], tonumber(ARGV[NS_ARGS + 8]), ARGV[NS_ARGS + 9]
local retry_data = ARGV[NS_ARGS + 10]
local res_keys, resw_keys = res_block(NS_KEYS + 2, nres)

local early, f = holder_call(meta, work_id, token, epoch, op, {'att', 'maxatt', 'step', 'v'},
  res_keys, resw_keys)
if early then return early end

redis.call('HSET', meta, 'err', error_json, 'op', op)
local woken = release_lease(meta, work_id, res_keys, resw_keys)
local version = tonumber(f.v)
if terminal == '1' then
  set_state(meta, work_id, 'running', 'failed')
  emit_final(meta, 'failed', work_id, f.step, version, data)
  stat('failed')
  woken = woken + child_finished(meta, work_id, 'failed') -- child work: tell the parent
  return {'FAILED', woken}
end
if tonumber(f.att) >= tonumber(f.maxatt) then
  set_state(meta, work_id, 'running', 'dead')
  emit_final(meta, 'dead', work_id, f.step, version, data)
  stat('dead')
  woken = woken + child_finished(meta, work_id, 'dead') -- child work: tell the parent
  return {'DEAD', woken}
end
local due = NOW + backoff
schedule_item(meta, work_id, 'running', 'retrying', due)
local pause = meta_get(meta, 'pause')  -- pause: asked while the step ran (see pause.lua)
if pause then pause_item(meta, work_id, pause) end
emit('retrying', work_id, f.step, version, retry_data)
stat('retried')
return {'RETRYING', due, woken}
