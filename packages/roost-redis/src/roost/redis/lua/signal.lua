-- Send a signal to an item: append it to the item's signal stream (kept, in order, until
-- the commit of a step that receives it), and wake the item if it awaits that name.
-- KEYS: @states @due @events @stats @saq_queued @saq_incomplete @engines meta sig job
-- ARGV: @saq_name @events_maxlen @worker @engine work_id name payload sender dispatch
--     job_suffix max_pending
-- REPLY WOKE: signal_id
-- REPLY KEPT: signal_id
-- REPLY GONE
-- REPLY TERMINAL: state
-- REPLY FULL: pending
-- WOKE: it was awaiting this name (queued now); KEPT: kept for a later wait or the step
-- that will receive it.
local meta, sig, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2], KEYS[NS_KEYS + 3]
local work_id, name, payload = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3]
local sender, dispatch, saq_key = ARGV[NS_ARGS + 4], ARGV[NS_ARGS + 5], ARGV[NS_ARGS + 6]
local max_pending = tonumber(ARGV[NS_ARGS + 7])

local f = redis.call('HMGET', meta, 'state', 'wsig', 'step', 'v')
local state = f[1]
if not state then return {'GONE'} end
if TERMINAL[state] then return {'TERMINAL', state} end
local pending = redis.call('XLEN', sig)
if pending >= max_pending then return {'FULL', pending} end

local id = redis.call('XADD', sig, '*', 'n', name, 'p', payload, 's', sender, 't', NOW)
emit('signalled', work_id, f[3], tonumber(f[4]), cjson.encode({name = name, sender = sender,
  id = id}))
stat('signalled')
if state == 'awaiting' then
  for want in string.gmatch(f[2] or '', '%S+') do
    if want == name then
      queue_item(meta, work_id, 'awaiting', job, saq_key, dispatch)
      return {'WOKE', id}
    end
  end
end
return {'KEPT', id}
