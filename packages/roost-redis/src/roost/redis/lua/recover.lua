-- Recover items whose lease expired (their worker died, stalled or lost Redis), or, given a
-- holder, the items leased by that worker (it is gone: its heartbeat stopped, or a new
-- worker started with its identity). A crash counts as an attempt: past the item's limit it
-- goes dead, else back on the queue, at the front. The lease is dropped (token, holder and
-- expiry deleted), so the old holder's commit, renewal or release finds a lease that is not
-- its own ('STALE'); the next acquire grants a new token and a higher epoch.
-- KEYS: @states @leases @due @events @stats @saq_queued @saq_incomplete @engines beats
--     items*(meta job res* resw*)
-- ARGV: @saq_name @events_maxlen @worker @engine count holder beat_seen forget items*(work_id
--     token dispatch job_suffix resources nres)
-- REPLY: requeued dead woken alive
-- beats: the queue's heartbeat index. holder: '' to recover by expiry; beat_seen: the
-- holder's heartbeat as the caller read it ('' for none: no check); forget: 1 to drop the
-- holder from the heartbeat index after this batch. Per item: the token and resources
-- (space-joined) seen, and nres resource and waiter keys.
-- With a holder, nothing is done unless its heartbeat is still the one the caller read: a
-- worker that beat again meanwhile is alive and keeps its leases (alive: 1).
local beats = KEYS[NS_KEYS + 1]
local n = tonumber(ARGV[NS_ARGS + 1])
local holder, beat_seen = ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3]
local forget = ARGV[NS_ARGS + 4] == '1'
local reason = ''
if holder ~= '' then
  local beat = redis.call('ZSCORE', beats, holder)
  if beat and (beat_seen == '' or tonumber(beat) ~= tonumber(beat_seen)) then
    return {0, 0, 0, 1}
  end
  reason = 'worker gone'
end
local requeued, dead, woken = 0, 0, 0
local k, a = NS_KEYS + 2, NS_ARGS + 5
for _ = 1, n do
  local meta, job = KEYS[k], KEYS[k + 1]
  local work_id, token, dispatch, saq_key = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local res_seen, nres = ARGV[a + 4], tonumber(ARGV[a + 5])
  local res_keys, resw_keys = res_block(k + 2, nres)
  local f = redis.call('HMGET', meta, 'state', 'ltok', 'lexp', 'att', 'maxatt', 'res', 'lw',
    'step', 'v')
  local due
  if holder == '' then
    due = f[3] and tonumber(f[3]) <= NOW
  else
    due = f[7] == holder
  end
  if not f[1] then
    redis.call('ZREM', LEASES, work_id)
  elseif f[2] == token and due and (f[6] or '') == res_seen then
    woken = woken + release_lease(meta, work_id, res_keys, resw_keys)
    local version = tonumber(f[9])
    local info
    if reason ~= '' then
      info = cjson.encode({worker = f[7], attempt = tonumber(f[4]), reason = reason})
    else
      info = cjson.encode({worker = f[7], attempt = tonumber(f[4])})
    end
    if f[1] == 'cancelled' then
      redis.call('HDEL', meta, 'cxl')
      redis.call('HSET', meta, 'updated', NOW)
      emit_final(meta, 'released', work_id, f[8], version, '{"reason":"cancelled"}')
    elseif tonumber(f[4]) >= tonumber(f[5]) then
      local how = 'lease expired'
      if reason ~= '' then how = 'worker gone' end
      redis.call('HSET', meta, 'err', cjson.encode({type = 'WorkerLost',
        message = how .. ' during attempt ' .. f[4] .. ' on worker ' .. (f[7] or '?'),
        attempt = tonumber(f[4]), ts = NOW / 1000}))
      set_state(meta, work_id, f[1], 'dead')
      emit_final(meta, 'dead', work_id, f[8], version, info)
      stat('dead')
      woken = woken + child_finished(meta, work_id, 'dead') -- child work: tell the parent
      dead = dead + 1
    else
      emit('lease_expired', work_id, f[8], version, info)
      queue_item(meta, work_id, f[1], job, saq_key, dispatch, true)
      requeued = requeued + 1
    end
  end
  k = k + 2 + 2 * nres
  a = a + 6
end
if holder ~= '' and forget then redis.call('ZREM', beats, holder) end
return {requeued, dead, woken, 0}
