-- Commit a step: the fenced, atomic heart of Roost.
-- KEYS: @states @leases @due @events @stats @saq_queued @saq_incomplete @engines meta snap hist
--     job res* resw* sig kids? children*(meta item idem)
-- ARGV: @saq_name @events_maxlen @worker @engine work_id token epoch op expected_version
--     snapshot_json step outcome delay_ms dispatch job_suffix history nres event_data init_json
--     init_step ended_ms wait budget nkids? kids_wait? children*(work_id item_json engine
--     resources priority idem imax)
-- REPLY OK: version event_id woken now due_ms paused
-- REPLY DUP
-- REPLY STALE
-- REPLY GONE
-- REPLY CANCELLED: woken
-- REPLY CONFLICT: version
-- REPLY TAKEN: child
-- REPLY RACE: key
-- outcome: 'done' | 'inline' | 'hold' | 'queue' | 'delay' | 'await_signals' | 'await'.
-- init_json, init_step ('' and '' when none): with one, the item's init snapshot is
-- committed as expected+1 in the same call and the step's result as expected+2. ended_ms:
-- when the step ended (server ms as the worker estimates it, or ''): a delay runs from then,
-- never later than from now. DUP: this very commit already applied.
-- Waits (see signal.lua): sig is the item's signal stream; wait is the step's wait JSON, ''
-- for none (a plain commit), else {consume = ids of the signals the step received, names =
-- the signals it awaits next, timeout_ms (-1: none), approval = the approval request's JSON
-- or ''}; with outcome 'await_signals' the item is parked in 'awaiting' (or queued at once if
-- one it awaits already came).
-- Budgets (see budget.lua): budget is '' for none, else JSON {charge = what the step charged,
-- count = 1 for a step (0 for an init snapshot committed alone), steps, cost, runtime_ms =
-- the item's limits (-1: none; the meta's 'bsteps', 'bcost', 'bruntime' raised by an
-- operator win)}; an item over a limit after this step is parked in 'paused' (reason
-- 'budget') instead of going on.
-- Pause (see pause.lua): an item paused while its step ran ('pause' set) is parked in
-- 'paused' by this commit instead of going on (unless it finished); paused is then 1.
-- Child work (optional, after all of the above): kids is the item's kids hash, then meta,
-- item and idem per child; nkids, kids_wait ('' | 'all' | 'any' | a number), 7 arguments per
-- child (see kids_plan in the prelude). Outcome 'await' parks the item in 'awaiting' until
-- enough children finished ('queue' if they already have). TAKEN (child: its work id) and
-- RACE (key: the idempotency key) write nothing.
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
-- after the signal stream (a key) and the wait and budget arguments (ARGV 18, 19)
local kids_at, kids_arg = NS_KEYS + 6 + 2 * nres, NS_ARGS + 20
local plan = nil
-- child work: end

local early, f = holder_call(meta, work_id, token, epoch, op, {'v', 'prog', 'pause'}, res_keys,
  resw_keys)
if early then return early end
if tonumber(f.v) ~= expected then return {'CONFLICT', f.v} end
-- child work: begin (checks only: nothing is written before the plan is accepted)
if ARGV[kids_arg] and KEYS[kids_at] then
  local refused
  plan, refused = kids_plan(kids_at, kids_arg, work_id)
  if refused then return refused end
end
-- child work: end
-- ---- signals: begin (waits and the signals a step consumed; see signal.lua) ----------
local wait_json, sig_key = ARGV[NS_ARGS + 18] or '', KEYS[NS_KEYS + 5 + 2 * nres]
local wait = nil
if wait_json ~= '' then
  wait = cjson.decode(wait_json)
  -- What the step received is consumed with its commit, exactly once.
  if #wait.consume > 0 then redis.call('XDEL', sig_key, unpack(wait.consume)) end
  redis.call('HDEL', meta, 'wsig', 'appr')
end
-- Park the item (no lease) until a signal it awaits arrives; one sent before the wait was
-- kept, and the item goes on at once.
local function await_item()
  local names = {}
  for _, n in ipairs(wait.names) do names[n] = true end
  for _, e in ipairs(redis.call('XRANGE', sig_key, '-', '+')) do
    if names[e[2][2]] then
      queue_item(meta, work_id, 'running', job, saq_key, dispatch)
      return
    end
  end
  if wait.timeout_ms >= 0 then
    schedule_item(meta, work_id, 'running', 'awaiting', NOW + wait.timeout_ms)
  else
    set_state(meta, work_id, 'running', 'awaiting')
  end
  redis.call('HSET', meta, 'wsig', table.concat(wait.names, ' '))
  if wait.approval ~= '' then redis.call('HSET', meta, 'appr', wait.approval) end
end
-- ---- signals: end ---------------------------------------------------------------------
-- ---- pause: begin (a pause asked while the step ran takes effect here) ----------------
local pausing = (f.pause and outcome ~= 'hold' and outcome ~= 'done') and true or false
-- ---- budget: begin (spending is committed with the step that spent it) ------------------
local budget_json, over = ARGV[NS_ARGS + 19] or '', nil
if budget_json ~= '' and outcome ~= 'hold' then
  local b = cjson.decode(budget_json)
  local spent = tonumber(redis.call('HINCRBYFLOAT', meta, 'spent', b.charge))
  local steps = redis.call('HINCRBY', meta, 'nsteps', b.count)
  local g = redis.call('HMGET', meta, 'bsteps', 'bcost', 'bruntime', 'created')
  local lsteps = tonumber(g[1] or b.steps)
  local lcost, lrun = tonumber(g[2] or b.cost), tonumber(g[3] or b.runtime_ms)
  if lsteps >= 0 and steps >= lsteps then over = 'steps'
  elseif lcost >= 0 and spent >= lcost then over = 'cost'
  elseif lrun >= 0 and NOW - tonumber(g[4] or NOW) >= lrun then over = 'runtime' end
  if over and outcome ~= 'done' then
    redis.call('HSET', meta, 'bover', over)
    pausing = true
  end
end
-- ---- budget: end ----------------------------------------------------------------------
if pausing and outcome == 'inline' then outcome = 'queue' end
-- ---- pause: end -----------------------------------------------------------------------
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
    drop_attempts(meta)
    repack(meta) -- after a progress report or an approval request, kept small again
    etype = 'done'
    stat('done')
    woken = woken + child_finished(meta, work_id, 'done') -- child work: tell the parent
  elseif outcome == 'await_signals' then
    await_item()
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
if pausing then pause_item(meta, work_id, (over and 'budget') or f.pause) end  -- pause, budget
stat('committed')
local eid
if etype == 'done' then
  eid = emit_final(meta, etype, work_id, step, version, data)
else
  eid = emit(etype, work_id, step, version, data)
end
return {'OK', version, eid, woken, NOW, due, pausing and 1 or 0}
