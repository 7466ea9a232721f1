-- Recover items whose lease expired (their worker died, stalled or lost Redis). A crash
-- counts as an attempt: past the item's limit it goes dead, else back on the queue.
-- Item keys per item: meta, job, then nres resource keys and nres waiter keys.
-- ARGV: count, then 5 per item: work_id, token seen, dispatch, saq job key suffix,
-- resources seen (space-joined), then nres.
-- Returns {requeued, dead, woken}.
local n = tonumber(ARGV[NS_ARGS + 1])
local requeued, dead, woken = 0, 0, 0
local k, a = NS_KEYS + 1, NS_ARGS + 2
for _ = 1, n do
  local meta, job = KEYS[k], KEYS[k + 1]
  local work_id, token, dispatch, saq_key = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local res_seen, nres = ARGV[a + 4], tonumber(ARGV[a + 5])
  local res_keys, resw_keys = res_block(k + 2, nres)
  local f = redis.call('HMGET', meta, 'state', 'ltok', 'lexp', 'att', 'maxatt', 'res', 'lw',
    'step', 'v')
  if not f[1] then
    redis.call('ZREM', LEASES, work_id)
  elseif f[2] == token and tonumber(f[3]) <= NOW and (f[6] or '') == res_seen then
    woken = woken + release_lease(meta, work_id, res_keys, resw_keys)
    local version = tonumber(f[9])
    local info = cjson.encode({worker = f[7], attempt = tonumber(f[4])})
    if f[1] == 'cancelled' then
      redis.call('HDEL', meta, 'cxl')
      redis.call('HSET', meta, 'updated', NOW, 'finished', NOW)
      emit_final(meta, 'released', work_id, f[8], version, '{"reason":"cancelled"}')
    elseif tonumber(f[4]) >= tonumber(f[5]) then
      redis.call('HSET', meta, 'err', cjson.encode({type = 'WorkerLost',
        message = 'lease expired during attempt ' .. f[4] .. ' on worker ' .. (f[7] or '?'),
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
return {requeued, dead, woken}
