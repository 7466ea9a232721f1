-- Send a signal to an item: append it to the item's signal stream (kept, in order, until
-- the commit of a step that receives it), and wake the item if it awaits that name.
-- Item keys: meta, sig (the item's signal stream), next job.
-- ARGV: work_id, name, payload json, sender, dispatch, saq job key suffix, max pending.
-- Returns {'WOKE', signal id} (it was awaiting this name: queued now) / {'KEPT', signal id}
-- (kept for a later wait or the step that will receive it) / {'GONE'} / {'TERMINAL', state}
-- / {'FULL', pending}.
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
