-- Create work items (a batch). Item keys, 5 per item: meta, item, snap, idem, job.
-- ARGV: queue, then 11 per item: work_id, item_json, engine, resources (space-joined),
-- priority, delay_ms, idempotency key ('' none), dispatch, saq job key suffix,
-- seed snapshot json ('' none), max_attempts ('' for the worker's default).
-- Returns per item: work_id, 1 when created (0: an existing item was returned).
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

for _, p in ipairs(plan) do
  local k, a = p[1], p[2]
  local meta = KEYS[k + 1]
  local work_id, engine, res, prio = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local delay, idem, seed = tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 9]
  local version = 0
  if seed ~= '' then
    redis.call('SET', KEYS[k + 3], seed)
    version = 1
  end
  redis.call('HSET', meta, 'engine', engine, 'queue', queue, 'v', version, 'att', 0,
    'prio', prio, 'created', NOW)
  if res ~= '' then redis.call('HSET', meta, 'res', res) end
  if ARGV[a + 10] ~= '' then redis.call('HSET', meta, 'imax', ARGV[a + 10]) end
  if idem ~= '' then
    redis.call('HSET', meta, 'idem', idem)
    redis.call('SET', KEYS[k + 4], work_id)
  end
  redis.call('SET', KEYS[k + 2], ARGV[a + 1])
  if delay > 0 then
    schedule_item(meta, work_id, nil, 'scheduled', NOW + delay)
  else
    queue_item(meta, work_id, nil, KEYS[k + 5], ARGV[a + 8], ARGV[a + 7])
  end
  emit('enqueued', work_id, '', version,
    cjson.encode({engine = engine, delay_ms = delay, queue = queue}))
end
if #plan > 0 then stat('enqueued', #plan) end
return out
