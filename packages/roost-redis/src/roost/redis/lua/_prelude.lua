-- Shared prelude of every Roost script: run once, when the library is loaded, so its tables
-- and helpers are made once and not on every call. Every call starts with begin(KEYS, ARGV,
-- ...) (scripts.py puts it there, generated from the script's header), which sets what
-- depends on the call: the namespace keys and arguments the script takes, and NOW.
--
-- A script's header (see roost/redis/contract.py) lists its KEYS and ARGV. The namespace
-- slots (@states, @leases, @due, @events, @stats, @saq_queued, @saq_active, @saq_incomplete,
-- @strand, @engines; @saq_name, @events_maxlen, @worker, @lease_ttl, @engine) come first, in
-- that order, and only those the script (with the helpers it calls) uses: @states is the 11
-- state indexes in STATES order; then the queue's leases and due sorted sets, the event
-- stream, the stats hash, the delivery route's SAQ queued list, active list and incomplete
-- set (one engine's SAQ queue), its stranded-delivery hash and the queue's set of engines.
-- ARGV: the route's SAQ queue name, the event stream cap, the worker id ('' for none), the
-- lease TTL in ms, the route's engine ('' for the single list of the layout before
-- per-engine delivery). The script's own keys follow from KEYS[NS_KEYS + 1] and its
-- arguments from ARGV[NS_ARGS + 1]. A script that queues an item pushes it on the route it
-- was given: the caller picks the route of the item's engine. A test checks that each
-- header names exactly the namespace slots its script's code reaches.
--
-- Every script validates before its first write: Redis does not roll a script back.
local STATES = {'queued', 'scheduled', 'retrying', 'waiting', 'awaiting', 'paused', 'running',
  'done', 'failed', 'dead', 'cancelled'}
local TERMINAL = {done = true, failed = true, dead = true, cancelled = true}
-- A state's offset in @states (STATES order; the library's load runs no loops).
local STATE_INDEX = {queued = 0, scheduled = 1, retrying = 2, waiting = 3, awaiting = 4,
  paused = 5, running = 6, done = 7, failed = 8, dead = 9, cancelled = 10}
-- Set by begin() for the call under way.
local KEYS, ARGV, NOW, NOW_STR, NS_KEYS, NS_ARGS, STATES_AT
local LEASES, DUE, EVENTS, STATS
local SAQ_QUEUED, SAQ_ACTIVE, SAQ_INCOMPLETE, STRAND, ENGINES
local SAQ_NAME, EVENTS_MAXLEN, WORKER, LEASE_TTL, ENGINE

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- nk, na: how many namespace keys and arguments the script takes; then the position of each
-- namespace slot in KEYS or ARGV (nil: the script does not take it).
local function begin(keys, argv, nk, na, states, leases, due, events, stats, saq_queued,
    saq_active, saq_incomplete, strand, engines, saq_name, events_maxlen, worker, lease_ttl,
    engine)
  KEYS, ARGV, NS_KEYS, NS_ARGS, STATES_AT = keys, argv, nk, na, states
  LEASES, DUE, EVENTS, STATS = keys[leases], keys[due], keys[events], keys[stats]
  SAQ_QUEUED, SAQ_ACTIVE, SAQ_INCOMPLETE = keys[saq_queued], keys[saq_active],
    keys[saq_incomplete]
  STRAND, ENGINES = keys[strand], keys[engines]
  SAQ_NAME, EVENTS_MAXLEN, WORKER = argv[saq_name], argv[events_maxlen], argv[worker]
  LEASE_TTL = tonumber(argv[lease_ttl])
  ENGINE = argv[engine]
  NOW, NOW_STR = now_ms(), nil
end

-- NOW as redis.call and cjson write it (made once per call: each is a printf).
local function now_str()
  if not NOW_STR then NOW_STR = tostring(NOW) end
  return NOW_STR
end

-- The state index of ``state`` (a script that calls this takes @states).
local function state_key(state)
  return KEYS[STATES_AT + STATE_INDEX[state]]
end

local function meta_get(meta, field)
  local v = redis.call('HGET', meta, field)
  if v == false then return nil end
  return v
end

-- Append an event; returns its stream id.
local function emit(etype, work_id, step, version, data)
  local f = {'t', etype, 'w', work_id}
  if step and step ~= '' then f[#f + 1] = 's'; f[#f + 1] = step end
  if version then f[#f + 1] = 'v'; f[#f + 1] = tostring(version) end
  if WORKER ~= '' then f[#f + 1] = 'k'; f[#f + 1] = WORKER end
  if data and data ~= '' then f[#f + 1] = 'd'; f[#f + 1] = data end
  return redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', unpack(f))
end

-- Append the event that finishes an item (or follows its finish) and keep its stream id in
-- the meta ('fev'): the item's events end there. The id's time can be later than NOW (an
-- event id never goes below the stream's last one), so 'finished' cannot mark that end.
local function emit_final(meta, etype, work_id, step, version, data)
  local eid = emit(etype, work_id, step, version, data)
  redis.call('HSET', meta, 'fev', eid)
  return eid
end

-- Per-minute counters for the console's throughput figures.
local function stat(kind, n)
  redis.call('HINCRBY', STATS, tostring(math.floor(NOW / 60000)) .. ':' .. kind, n or 1)
end

-- The dispatch token ('disp') names an item's current delivery only while it is queued
-- (every check of a delivery wants state 'queued' and that token): it goes when the item
-- leaves 'queued', so a finished item does not keep it. A finished item's finish time is
-- its 'updated' (nothing changes it once the item is finished); versions before wrote it
-- to 'finished' as well, which goes when the item runs again.
local function set_state(meta, work_id, old, new)
  if old and STATE_INDEX[old] and old ~= new then redis.call('ZREM', state_key(old), work_id) end
  redis.call('ZADD', state_key(new), NOW, work_id)
  redis.call('HSET', meta, 'state', new, 'updated', NOW)
  if old == 'queued' and new ~= 'queued' then redis.call('HDEL', meta, 'disp') end
  if old and TERMINAL[old] and not TERMINAL[new] then
    redis.call('HDEL', meta, 'finished', 'fev')
  end
end

-- What a done item keeps of its attempts: nothing. Its attempt count is 0 (its last commit
-- reset it) and the lease's attempt limit meant something only while attempts went on;
-- both read as their defaults when absent, and the next acquire (a retry or a replay)
-- writes them again. A failed or dead item keeps them: they tell how it ran out. Priority
-- 0 is the default too (versions before wrote it on every item).
local function drop_attempts(meta)
  redis.call('HDEL', meta, 'att', 'maxatt')
  if redis.call('HGET', meta, 'prio') == '0' then redis.call('HDEL', meta, 'prio') end
end

-- A hash that once held a value longer than the server's listpack limit
-- (hash-max-listpack-value, 64 bytes by default: a progress report, an approval request)
-- keeps the hashtable encoding after that value goes, which for a done item's meta is more
-- than twice the size (about 560 bytes instead of 240 on Valkey). When every value fits
-- again, write the meta afresh, so that the server packs it (the same fields and values; a
-- meta key has no expiry to keep). Values are judged against the default limit: with a
-- lower one configured, the server keeps a hashtable, as it would have anyway.
local LISTPACK_VALUE = 64
local function repack(meta)
  if redis.call('OBJECT', 'ENCODING', meta) ~= 'hashtable' then return end
  local all = redis.call('HGETALL', meta)
  for i = 1, #all do
    if #all[i] > LISTPACK_VALUE then return end
  end
  redis.call('DEL', meta)
  redis.call('HSET', meta, unpack(all))
end

-- Write a SAQ job record and put it on SAQ's queue (the same three writes as SAQ 0.26's own
-- enqueue script). Roost is the source of truth, so the job is configured never to be run
-- twice by SAQ itself: retries=1 (a sweep finishes it instead of re-queueing), timeout=0
-- and heartbeat=0 (Roost's lease, not SAQ, decides when a step is lost), ttl=-1 (the record
-- is deleted when Roost acknowledges the delivery). As SAQ's own records do, it leaves out
-- the fields at SAQ's defaults (heartbeat 0, retries 1), which SAQ reads back as such. The
-- route's engine joins the queue's set of engines, so recovery and the fleet view know
-- every list there is.
local function saq_push(job_key, saq_key, work_id, dispatch, front)
  if ENGINE ~= '' then redis.call('SADD', ENGINES, ENGINE) end
  -- The record as cjson.encode would make it of a table, without the table: each string
  -- is encoded (escaped) on its own, the constants are written out, NOW is formatted once.
  local enc = cjson.encode
  redis.call('SET', job_key, '{"function":"roost.step","kwargs":{"work_id":' .. enc(work_id)
    .. ',"dispatch":' .. enc(dispatch) .. '},"queue":' .. enc(SAQ_NAME) .. ',"key":'
    .. enc(saq_key) .. ',"timeout":0,"ttl":-1,"queued":' .. now_str() .. ',"status":"queued"}')
  redis.call('ZADD', SAQ_INCOMPLETE, 0, job_key)
  if front then
    redis.call('LPUSH', SAQ_QUEUED, job_key)
  else
    redis.call('RPUSH', SAQ_QUEUED, job_key)
  end
end

-- Acknowledge a delivered SAQ job: it leaves SAQ's active list and its record is deleted.
local function saq_ack(job_key)
  redis.call('LREM', SAQ_ACTIVE, 1, job_key)
  redis.call('ZREM', SAQ_INCOMPLETE, job_key)
  redis.call('DEL', job_key)
  redis.call('HDEL', STRAND, job_key)
end

-- Move an item to 'queued' with a fresh dispatch token and push its SAQ job on the route's
-- list (its engine's): to the front for a priority item or when ``resume`` is set (work
-- that was already running and lost its worker goes before its engine's backlog, so it
-- resumes within the lease TTL and a small bound however long that is), else to the back.
local function queue_item(meta, work_id, old_state, job_key, saq_key, dispatch, resume)
  set_state(meta, work_id, old_state, 'queued')
  redis.call('HSET', meta, 'disp', dispatch)
  redis.call('HDEL', meta, 'due')
  redis.call('ZREM', DUE, work_id)
  local front = resume or tonumber(meta_get(meta, 'prio') or '0') > 0
  saq_push(job_key, saq_key, work_id, dispatch, front)
end

-- Park an item in the due index until due_ms.
local function schedule_item(meta, work_id, old_state, new_state, due_ms)
  set_state(meta, work_id, old_state, new_state)
  redis.call('HSET', meta, 'due', due_ms)
  redis.call('ZADD', DUE, due_ms, work_id)
end

-- Drop the lease and the resource claims it owns; wake the oldest waiter of each freed
-- resource by moving its due time to now. Returns how many waiters were woken.
local function release_lease(meta, work_id, res_keys, resw_keys)
  redis.call('HDEL', meta, 'ltok', 'lw', 'lexp')
  redis.call('ZREM', LEASES, work_id)
  local woken = 0
  for i, rk in ipairs(res_keys) do
    if redis.call('GET', rk) == work_id then
      redis.call('DEL', rk)
      -- Skip waiters that stopped waiting (cancelled, or another queue's item).
      for _ = 1, 8 do
        local waiter = redis.call('ZRANGE', resw_keys[i], 0, 0)[1]
        if not waiter then break end
        redis.call('ZREM', resw_keys[i], waiter)
        if redis.call('ZADD', DUE, 'XX', 'LT', 'CH', NOW, waiter) == 1 then
          woken = woken + 1
          break
        end
      end
    end
  end
  return woken
end

-- Split a block of n resource keys followed by their n waiter keys, starting at KEYS[first].
local function res_block(first, n)
  local res, resw = {}, {}
  for i = 1, n do
    res[i] = KEYS[first + i - 1]
    resw[i] = KEYS[first + n + i - 1]
  end
  return res, resw
end

-- Check a lease-holder call against the item's lease fields (ltok, lep, lexp as read by the
-- caller): the token and epoch must be the current lease's, and the lease must not have
-- expired by the server's clock. Returns nil when the caller holds the lease, else 'STALE'.
local function lease_error(ltok, lep, lexp, token, epoch)
  if ltok ~= token or lep ~= epoch or tonumber(lexp) <= NOW then return 'STALE' end
  return nil
end

-- The same check, reading the fields itself. Returns 'GONE' for an unknown item.
local function check_lease(meta, token, epoch)
  local f = redis.call('HMGET', meta, 'ltok', 'lep', 'lexp', 'state')
  if not f[4] then return 'GONE' end
  return lease_error(f[1], f[2], f[3], token, epoch)
end

-- An item cancelled while its step ran: drop the lease and claims, keep it cancelled.
local function finish_cancel(meta, work_id, res_keys, resw_keys)
  local woken = release_lease(meta, work_id, res_keys, resw_keys)
  redis.call('HDEL', meta, 'cxl')
  -- The item finishes now, when its holder lets go (its events end with this one).
  redis.call('HSET', meta, 'updated', NOW)
  emit_final(meta, 'released', work_id, meta_get(meta, 'step'), tonumber(meta_get(meta, 'v')),
    '{"reason":"cancelled"}')
  return woken
end

-- ---- pause: begin (see pause.lua and resume.lua) -----------------------------------------
-- Park an unfinished item that holds no lease in 'paused', remembering where it was (its
-- state in 'pst', its due time in 'pdue') so that resume puts it back; ``reason`` is
-- 'operator' or 'budget'. It leaves the due index: nothing runs it until it is resumed.
local function pause_item(meta, work_id, reason)
  local f = redis.call('HMGET', meta, 'state', 'due')
  redis.call('HSET', meta, 'pst', f[1], 'pause', reason)
  if f[2] then redis.call('HSET', meta, 'pdue', f[2]) else redis.call('HDEL', meta, 'pdue') end
  redis.call('ZREM', DUE, work_id)
  redis.call('HDEL', meta, 'due')
  set_state(meta, work_id, f[1], 'paused')
end
-- ---- pause: end ---------------------------------------------------------------------------

-- The shared start of every lease-holder call (commit, fail, release): read the item's
-- state, last op and lease plus ``fields`` in one HMGET, and answer the cases that end the
-- call early: unknown item ('GONE'), a repeat of this very call whose reply was lost
-- ('DUP'), a lapsed or foreign lease ('STALE'), an item an operator cancelled meanwhile
-- ('CANCELLED', after letting go of the lease). Returns (reply, nil) for those, else
-- (nil, values) with values[field] for each of ``fields``.
local function holder_call(meta, work_id, token, epoch, op, fields, res_keys, resw_keys)
  local f = redis.call('HMGET', meta, 'state', 'op', 'ltok', 'lep', 'lexp', unpack(fields))
  if not f[1] then return {'GONE'} end
  if f[2] == op then return {'DUP'} end
  local err = lease_error(f[3], f[4], f[5], token, epoch)
  if err then return {err} end
  if f[1] == 'cancelled' then
    return {'CANCELLED', finish_cancel(meta, work_id, res_keys, resw_keys)}
  end
  if f[1] ~= 'running' then return {'STALE'} end
  local values = {}
  for i, name in ipairs(fields) do values[name] = f[5 + i] end
  return nil, values
end

-- Child work ----------------------------------------------------------------------------
-- A parent's children live in its kids hash (child work id -> '' while unfinished, else
-- the state it finished in); the parent's meta counts them: kn spawned, kfin finished,
-- kwait (while it awaits them) how many must have finished. A child's meta names its
-- parent: pid, and pmeta and pkids, the parent's meta and kids keys as they came through
-- the KEYS of the commit that spawned it (same namespace, so same hash tag), and pidx,
-- its place in the spawn order. Children share their parent's queue, so the parent's due
-- index is the one every script of the child has.
local KID_KEYS, KID_ARGS = 3, 7

-- Read and check the children a commit spawns, writing nothing. KEYS from k: the parent's
-- kids hash, then per child its meta, item and idem keys; ARGV from a: count, wait ('',
-- 'all', 'any' or a number), then per child: work_id, item json, engine, resources
-- (space-joined), priority, idempotency key ('' none), max_attempts ('' default).
-- Returns (plan, nil), or (nil, reply) when a child's idempotency key names an item of
-- another parent or one with children of its own (an item of no parent and no children
-- becomes this one's child) ({'TAKEN', work_id}) or another item than the caller resolved
-- ({'RACE', key}: the caller resolves again and repeats).
local function kids_plan(k, a, parent_id)
  local n = tonumber(ARGV[a]) or 0
  local plan = {kids = KEYS[k], wait = ARGV[a + 1] or '', list = {}}
  for i = 0, n - 1 do
    local kk, ka = k + 1 + i * KID_KEYS, a + 2 + i * KID_ARGS
    local c = {meta = KEYS[kk], item = KEYS[kk + 1], idem = KEYS[kk + 2], id = ARGV[ka],
      json = ARGV[ka + 1], engine = ARGV[ka + 2], res = ARGV[ka + 3], prio = ARGV[ka + 4],
      key = ARGV[ka + 5], imax = ARGV[ka + 6]}
    if c.key ~= '' then
      local owner = redis.call('GET', c.idem)
      if owner and owner ~= c.id then return nil, {'RACE', c.key} end
    end
    local f = redis.call('HMGET', c.meta, 'state', 'pid', 'kn')
    if f[1] then
      -- Another parent's child, or an item with children of its own (the parent itself or
      -- an ancestor among them: no cycle can form), is not adopted.
      if (f[2] and f[2] ~= parent_id) or (f[3] and not f[2]) or c.id == parent_id then
        return nil, {'TAKEN', c.id}
      end
      c.existing = f[1]
    end
    plan.list[#plan.list + 1] = c
  end
  return plan, nil
end

-- Create the planned children (state 'scheduled', due now: the promoter queues each on its
-- own engine's list) and link them to the parent. An existing child (the same idempotency
-- key) is linked as it is. Returns how many were created.
local function kids_spawn(plan, pmeta, parent_id, queue)
  local created = 0
  for _, c in ipairs(plan.list) do
    if not c.existing or redis.call('HEXISTS', plan.kids, c.id) == 0 then
      local idx = redis.call('HINCRBY', pmeta, 'kn', 1)
      if c.existing and TERMINAL[c.existing] then
        redis.call('HSET', plan.kids, c.id, c.existing)
        redis.call('HINCRBY', pmeta, 'kfin', 1)
      else
        redis.call('HSET', plan.kids, c.id, '')
      end
      if not c.existing then
        redis.call('HSET', c.meta, 'engine', c.engine, 'queue', queue, 'v', 0, 'att', 0,
          'created', NOW)
        if c.prio ~= '0' then redis.call('HSET', c.meta, 'prio', c.prio) end
        if c.res ~= '' then redis.call('HSET', c.meta, 'res', c.res) end
        if c.imax ~= '' then redis.call('HSET', c.meta, 'imax', c.imax) end
        if c.key ~= '' then
          redis.call('HSET', c.meta, 'idem', c.key)
          redis.call('SET', c.idem, c.id)
        end
        redis.call('SET', c.item, c.json)
        schedule_item(c.meta, c.id, nil, 'scheduled', NOW)
        emit('enqueued', c.id, '', 0,
          cjson.encode({engine = c.engine, delay_ms = 0, queue = queue, parent = parent_id}))
        created = created + 1
      end
      redis.call('HSET', c.meta, 'pid', parent_id, 'pmeta', pmeta, 'pkids', plan.kids,
        'pidx', idx)
    end
  end
  if created > 0 then stat('enqueued', created) end
  return created
end

-- How many finished children a parent that ends its step with ``wait`` waits for, or nil
-- when it does not wait.
local function kids_need(pmeta, wait)
  if wait == '' then return nil end
  local f = redis.call('HMGET', pmeta, 'kn', 'kfin')
  local total, fin = tonumber(f[1] or '0'), tonumber(f[2] or '0')
  local need = total
  if wait == 'any' then need = 1 elseif wait ~= 'all' then need = tonumber(wait) end
  if need > total then need = total end
  if fin >= need then return nil end
  return need
end

-- A child finished (done, failed, dead or cancelled): record its state with its parent, and
-- if the parent awaits its children and enough have finished, make it due now (the
-- promoter queues it). Returns 1 when the parent was woken, else 0. Writes nothing for an
-- item that is nobody's child, or whose parent is gone (purged).
local function child_finished(meta, work_id, state)
  local f = redis.call('HMGET', meta, 'pid', 'pmeta', 'pkids')
  if not f[1] then return 0 end
  local pid, pmeta, pkids = f[1], f[2], f[3]
  local prev = redis.call('HGET', pkids, work_id)
  if prev == false or redis.call('EXISTS', pmeta) == 0 then return 0 end
  redis.call('HSET', pkids, work_id, state)
  if prev ~= '' then return 0 end
  local fin = redis.call('HINCRBY', pmeta, 'kfin', 1)
  local p = redis.call('HMGET', pmeta, 'state', 'kwait', 'step', 'v')
  if p[1] == 'awaiting' and p[2] and fin >= tonumber(p[2]) then
    redis.call('HDEL', pmeta, 'kwait')
    schedule_item(pmeta, pid, 'awaiting', 'scheduled', NOW)
    emit('children_ready', pid, p[3], tonumber(p[4]), cjson.encode({finished = fin}))
    return 1
  end
  return 0
end

-- A finished child runs again (retry): it is unfinished again for its parent.
local function child_reopened(meta, work_id)
  local f = redis.call('HMGET', meta, 'pid', 'pmeta', 'pkids')
  if not f[1] then return end
  local pmeta, pkids = f[2], f[3]
  local prev = redis.call('HGET', pkids, work_id)
  if prev and prev ~= '' and redis.call('EXISTS', pmeta) == 1 then
    redis.call('HSET', pkids, work_id, '')
    redis.call('HINCRBY', pmeta, 'kfin', -1)
  end
end
