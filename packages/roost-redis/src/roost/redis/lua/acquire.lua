-- Take the lease of a delivered item: its item and latest snapshot come back with it.
-- KEYS: @states @leases @due @events @stats @saq_active @saq_incomplete @strand meta item snap
--     job res* resw*
-- ARGV: @events_maxlen @worker @lease_ttl work_id dispatch token max_attempts nres resources
--     wait_base_ms wait_cap_ms engine_limits
-- REPLY OK: epoch lease_expires now attempt version item_json snap_json cancelled queued_since
--     late_due
-- REPLY GONE
-- REPLY SKIP: state
-- REPLY NEEDRES: resources
-- REPLY WAIT: delay_ms
-- REPLY DEAD
-- job: the delivered SAQ job; res, resw: the nres resources the worker read (resources,
-- space-joined) and their waiter sets. engine_limits: 'engine=n ...'. The attempt limit is
-- the item's own, else its engine's on this worker, else max_attempts. NEEDRES: the item's
-- resources differ from those read (call again with these). queued_since: when the item was
-- last queued (ms); late_due: the due time it was promoted from (ms, or '').
local meta, item_key, snap_key, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2],
  KEYS[NS_KEYS + 3], KEYS[NS_KEYS + 4]
local work_id, dispatch, token = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3]
local max_attempts, nres = tonumber(ARGV[NS_ARGS + 4]), tonumber(ARGV[NS_ARGS + 5])
local want_res = ARGV[NS_ARGS + 6]
local wait_base, wait_cap = tonumber(ARGV[NS_ARGS + 7]), tonumber(ARGV[NS_ARGS + 8])
local engine_limits = ARGV[NS_ARGS + 9]
local res_keys, resw_keys = res_block(NS_KEYS + 5, nres)

local f = redis.call('HMGET', meta, 'state', 'disp', 'ltok', 'att', 'res', 'v', 'wcount',
  'step', 'cxl', 'lep', 'lexp', 'imax', 'engine', 'updated', 'qdue')
local state = f[1]

local function granted(epoch, lexp, attempt)
  local snap = redis.call('GET', snap_key)
  return {'OK', epoch, lexp, NOW, attempt, f[6], redis.call('GET', item_key), snap or '',
    f[9] or '', f[14] or '', f[15] or ''}
end

if not state then
  saq_ack(job)
  return {'GONE'}
end
-- A retried call (lost reply) finds its own lease.
if state == 'running' and f[3] == token then return granted(f[10], f[11], f[4]) end
if state ~= 'queued' or f[2] ~= dispatch then
  saq_ack(job)
  return {'SKIP', state}
end
local res = f[5] or ''
if res ~= want_res then return {'NEEDRES', res} end

local busy = {}
for i, rk in ipairs(res_keys) do
  local holder = redis.call('GET', rk)
  if holder and holder ~= work_id then busy[#busy + 1] = i end
end
local attempt = tonumber(f[4] or '0')
if f[12] then
  max_attempts = tonumber(f[12])
else
  for name, limit in string.gmatch(engine_limits, '(%S+)=(%d+)') do
    if name == f[13] then max_attempts = tonumber(limit) end
  end
end

saq_ack(job)
if #busy > 0 then
  -- Waiting costs no attempt: exponential backoff, woken early when a holder releases.
  local wc = tonumber(f[7] or '0') + 1
  local delay = math.min(wait_base * 2 ^ (wc - 1), wait_cap)
  schedule_item(meta, work_id, 'queued', 'waiting', NOW + delay)
  redis.call('HSET', meta, 'wcount', wc)
  local names = {}
  for _, i in ipairs(busy) do
    redis.call('ZADD', resw_keys[i], 'NX', NOW, work_id)
    names[#names + 1] = redis.call('GET', res_keys[i])
  end
  if wc == 1 then emit('waiting', work_id, f[8], tonumber(f[6]), cjson.encode({held_by = names})) end
  return {'WAIT', delay}
end
if attempt >= max_attempts then
  set_state(meta, work_id, 'queued', 'dead')
  emit_final(meta, 'dead', work_id, f[8], tonumber(f[6]), '{"reason":"attempts exhausted"}')
  stat('dead')
  child_finished(meta, work_id, 'dead') -- child work: tell the parent
  return {'DEAD'}
end

attempt = attempt + 1
local epoch = redis.call('HINCRBY', meta, 'lep', 1)
local lexp = NOW + LEASE_TTL
redis.call('HSET', meta, 'ltok', token, 'lw', WORKER, 'lexp', lexp, 'att', attempt,
  'maxatt', max_attempts)
-- No resource wait count (absent reads as 0) and no queued-since due time from here on.
redis.call('HDEL', meta, 'wcount', 'qdue')
set_state(meta, work_id, 'queued', 'running')
redis.call('ZADD', LEASES, lexp, work_id)
for i, rk in ipairs(res_keys) do
  redis.call('SET', rk, work_id, 'PX', LEASE_TTL)
  redis.call('ZREM', resw_keys[i], work_id)
end
emit('started', work_id, f[8], tonumber(f[6]), '{"attempt":' .. attempt .. '}')
return granted(epoch, lexp, attempt)
