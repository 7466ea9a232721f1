-- Create work items (a batch).
-- KEYS: @states @due @events @stats @saq_queued @saq_incomplete @engines items*(meta item snap
--     idem job)
-- ARGV: @saq_name @events_maxlen @worker @engine queue items*(work_id item_json engine
--     resources priority delay_ms idem dispatch job_suffix seed imax)
-- REPLY: items*(work_id created)
-- resources: space-joined; idem: the idempotency key ('' none); seed: a seed snapshot's
-- JSON ('' none); imax: max attempts ('' for the worker's default). created: 1 when created,
-- 0 when an existing item (work_id) was returned.
local queue = ARGV[NS_ARGS + 1]
local first_arg = NS_ARGS + 2
local n = (#ARGV - first_arg + 1) / 11
local plan, out, seen = {}, {}, {}

for i = 0, n - 1 do
  local k = NS_KEYS + i * 5
  local a = first_arg + i * 11
  local work_id, idem = ARGV[a], ARGV[a + 6]
  local existing = nil
  if idem ~= '' then
    existing = seen[idem] or redis.call('GET', KEYS[k + 4])
    if existing == false then existing = nil end
  end
  if not existing and redis.call('EXISTS', KEYS[k + 1]) == 1 then existing = work_id end
  if existing then
    out[#out + 1] = existing; out[#out + 1] = 0
  else
    if idem ~= '' then seen[idem] = work_id end
    plan[#plan + 1] = {k, a}
    out[#out + 1] = work_id; out[#out + 1] = 1
  end
end

-- A new item's meta is written in one HSET: the fields set_state and queue_item (or
-- schedule_item) would add one call at a time, in the same order. Its state index entry,
-- due entry or SAQ job follow as those helpers write them. Numbers go to redis.call as
-- the strings it would make of them: each conversion is a printf, made once here.
local now = now_str()
for _, p in ipairs(plan) do
  local k, a = p[1], p[2]
  local meta = KEYS[k + 1]
  local work_id, engine, res, prio = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local delay, idem, seed, imax = tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 9], ARGV[a + 10]
  local version = '0'
  if seed ~= '' then
    redis.call('SET', KEYS[k + 3], seed)
    version = '1'
  end
  local state = delay > 0 and 'scheduled' or 'queued'
  local mf = {'engine', engine, 'queue', queue, 'v', version, 'att', '0', 'created', now}
  if prio ~= '0' then mf[#mf + 1] = 'prio'; mf[#mf + 1] = prio end
  if res ~= '' then mf[#mf + 1] = 'res'; mf[#mf + 1] = res end
  if imax ~= '' then mf[#mf + 1] = 'imax'; mf[#mf + 1] = imax end
  if idem ~= '' then mf[#mf + 1] = 'idem'; mf[#mf + 1] = idem end
  mf[#mf + 1] = 'state'; mf[#mf + 1] = state; mf[#mf + 1] = 'updated'; mf[#mf + 1] = now
  if delay > 0 then
    mf[#mf + 1] = 'due'; mf[#mf + 1] = NOW + delay
  else
    mf[#mf + 1] = 'disp'; mf[#mf + 1] = ARGV[a + 7]
  end
  redis.call('HSET', meta, unpack(mf))
  if idem ~= '' then redis.call('SET', KEYS[k + 4], work_id) end
  redis.call('SET', KEYS[k + 2], ARGV[a + 1])
  redis.call('ZADD', state_key(state), now, work_id)
  if delay > 0 then
    redis.call('ZADD', DUE, NOW + delay, work_id)
  else
    redis.call('ZREM', DUE, work_id)
    saq_push(KEYS[k + 5], ARGV[a + 8], work_id, ARGV[a + 7], tonumber(prio) > 0)
  end
  local delay_json = string.find(ARGV[a + 5], '^%d+$') and ARGV[a + 5] or cjson.encode(delay)
  emit('enqueued', work_id, '', version, '{"engine":' .. cjson.encode(engine) .. ',"delay_ms":'
    .. delay_json .. ',"queue":' .. cjson.encode(queue) .. '}')
end
if #plan > 0 then stat('enqueued', #plan) end
return out
