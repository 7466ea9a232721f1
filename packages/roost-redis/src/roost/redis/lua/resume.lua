-- Resume a paused item: it goes back where it was when paused (queued; scheduled or
-- retrying with its due time; awaiting its signals, or queued at once if one arrived
-- meanwhile). A running item whose pause has not taken effect yet just loses the mark.
-- KEYS: @states @due @events @saq_queued @saq_incomplete @engines meta sig job
-- ARGV: @saq_name @events_maxlen @worker @engine work_id dispatch job_suffix
-- REPLY OK: state
-- REPLY GONE
-- REPLY CONFLICT: state
-- sig: the item's signal stream. OK: the state it went back to.
local meta, sig, job = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2], KEYS[NS_KEYS + 3]
local work_id, dispatch, saq_key = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3]
local f = redis.call('HMGET', meta, 'state', 'pst', 'pdue', 'wsig', 'pause', 'step', 'v')
local state = f[1]
if not state then return {'GONE'} end
local back = state
if state == 'running' and f[5] then
  redis.call('HDEL', meta, 'pause')
elseif state ~= 'paused' then
  return {'CONFLICT', state}
else
  back = f[2] or 'queued'
  redis.call('HDEL', meta, 'pst', 'pdue', 'pause', 'bover')
  local due = tonumber(f[3] or '')
  if back == 'awaiting' then
    local names = {}
    for n in string.gmatch(f[4] or '', '%S+') do names[n] = true end
    for _, e in ipairs(redis.call('XRANGE', sig, '-', '+')) do
      if names[e[2][2]] then back = 'queued' break end
    end
  end
  if back == 'awaiting' and due then
    schedule_item(meta, work_id, 'paused', 'awaiting', due)
  elseif back == 'awaiting' then
    set_state(meta, work_id, 'paused', 'awaiting')
  elseif (back == 'scheduled' or back == 'retrying') and due then
    schedule_item(meta, work_id, 'paused', back, due)
  else
    back = 'queued'
    queue_item(meta, work_id, 'paused', job, saq_key, dispatch)
  end
end
emit('resumed', work_id, f[6], tonumber(f[7]), cjson.encode({state = back}))
return {'OK', back}
