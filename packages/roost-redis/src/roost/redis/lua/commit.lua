-- Commit a step: the fenced, atomic heart of Roost. Item keys: meta, snap, hist, next job,
-- then nres resource keys and nres waiter keys.
-- ARGV: work_id, token, epoch, op, expected_version, snapshot_json, step, outcome
-- ('done' | 'inline' | 'hold' | 'queue' | 'delay' | 'await'), delay_ms, dispatch, saq job key
-- suffix, history, nres, event data json, init snapshot json and its step ('' and '' when none:
-- with one, the item's init snapshot is committed as expected+1 in the same call and the
-- step's result as expected+2), when the step ended (server ms as the worker estimates
-- it, or ''): a delay runs from then, never later than from now.
-- Child work (optional, after all of the above): KEYS after the resource block: the item's
-- kids hash, then meta, item and idem per child; ARGV: child count, wait ('' | 'all' |
-- 'any' | a number), 7 per child (see kids_plan in the prelude). Outcome 'await' parks the
-- item in 'awaiting' until enough children finished ('queue' if they already have).
-- Returns {'OK', version, event_id, woken, now, due_ms} or {'DUP'} (this very
-- commit already applied), {'STALE'}, {'GONE'}, {'CANCELLED', woken}, {'CONFLICT', version},
-- {'TAKEN', work_id} or {'RACE', idempotency key} (child work: nothing was written).
local meta, snap_key, hist_key, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2],
  KEYS[NS_KEYS + 3], KEYS[NS_KEYS + 4]
local work_id, token, epoch, op = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3],
  ARGV[NS_ARGS + 4]
local expected, snap_json, step = tonumber(ARGV[NS_ARGS + 5]), ARGV[NS_ARGS + 6],
  ARGV[NS_ARGS + 7]
local outcome, delay = ARGV[NS_ARGS + 8], tonumber(ARGV[NS_ARGS + 9])
local dispatch, saq_key = ARGV[NS_ARGS + 10], ARGV[NS_ARGS + 11]
local history, nres = tonumber(ARGV[NS_ARGS + 12]), tonumber(ARGV[NS_ARGS + 13])
local data = ARGV[NS_ARGS + 14]
local init_json, init_step = ARGV[NS_ARGS + 15], ARGV[NS_ARGS + 16]
local ended = tonumber(ARGV[NS_ARGS + 17])
local res_keys, resw_keys = res_block(NS_KEYS + 5, nres)
-- child work: begin
local kids_at, kids_arg = NS_KEYS + 5 + 2 * nres, NS_ARGS + 18
local plan = nil
-- child work: end

local early, f = holder_call(meta, work_id, token, epoch, op, {'v', 'prog'}, res_keys, resw_keys)
if early then return early end
if tonumber(f.v) ~= expected then return {'CONFLICT', f.v} end
-- child work: begin (checks only: nothing is written before the plan is accepted)
if ARGV[kids_arg] and KEYS[kids_at] then
  local refused
  plan, refused = kids_plan(kids_at, kids_arg, work_id)
  if refused then return refused end
end
-- child work: end
-- Inline continuation never holds claims across steps; 'hold' keeps lease and claims (the
-- worker records a failure right after).
if outcome == 'inline' and nres > 0 then outcome = 'queue' end
if outcome == 'hold' then outcome = 'inline' end

local version = expected + 1
if init_json ~= '' then
  -- The init snapshot was never stored on its own: it becomes version expected+1 here.
  emit('committed', work_id, init_step, version, '{"next":"inline"}')
  stat('committed')
  version = version + 1
end
if history > 0 then
  local old = redis.call('GET', snap_key)
  if init_json ~= '' then old = init_json end
  if old then
    redis.call('LPUSH', hist_key, old)
    redis.call('LTRIM', hist_key, 0, history - 1)
  end
end
redis.call('SET', snap_key, snap_json)
-- An inline continuation starts the next step's first attempt on this lease right away; it
-- must count, or a step that kills its worker would never run out of attempts.
local attempts = 0
if outcome == 'inline' then attempts = 1 end
if f.prog then redis.call('HDEL', meta, 'prog') end

local woken, due, etype = 0, 0, 'committed'
-- child work: begin
local need = nil
if plan then
  woken = woken + kids_spawn(plan, meta, work_id, meta_get(meta, 'queue') or '')
  if outcome == 'await' then
    need = kids_need(meta, plan.wait)
    if not need then outcome = 'queue' end -- enough finished: go on (the event still says await)
  end
end
if outcome == 'await' and not need then outcome = 'queue' end
-- child work: end
if outcome == 'inline' then
  -- The lease runs on as it was: the holder's renewals keep it alive.
  redis.call('HSET', meta, 'v', version, 'step', step, 'att', attempts, 'op', op,
    'updated', NOW)
else
  redis.call('HSET', meta, 'v', version, 'step', step, 'att', attempts, 'op', op)
  woken = woken + release_lease(meta, work_id, res_keys, resw_keys)
  if outcome == 'done' then
    set_state(meta, work_id, 'running', 'done')
    etype = 'done'
    stat('done')
    woken = woken + child_finished(meta, work_id, 'done') -- child work: tell the parent
  elseif outcome == 'await' then -- child work: no lease, no due time, until children finish
    set_state(meta, work_id, 'running', 'awaiting')
    redis.call('HSET', meta, 'kwait', need)
  elseif outcome == 'delay' then
    due = NOW + delay
    if ended then due = math.min(due, ended + delay) end
    schedule_item(meta, work_id, 'running', 'scheduled', due)
  else
    queue_item(meta, work_id, 'running', job, saq_key, dispatch)
  end
end
stat('committed')
local eid
if etype == 'done' then
  eid = emit_final(meta, etype, work_id, step, version, data)
else
  eid = emit(etype, work_id, step, version, data)
end
return {'OK', version, eid, woken, NOW, due}
