-- Queue items whose due time has come (a batch).
-- KEYS: @states @due @saq_queued @saq_incomplete @engines items*(meta job)
-- ARGV: @saq_name @engine count items*(work_id dispatch job_suffix)
-- REPLY: queued next_due now
-- next_due: the due time of the next item (ms), -1 when none.
local n = tonumber(ARGV[NS_ARGS + 1])
local queued = 0
for i = 0, n - 1 do
  local meta, job = KEYS[NS_KEYS + 1 + i * 2], KEYS[NS_KEYS + 2 + i * 2]
  local a = NS_ARGS + 2 + i * 3
  local work_id = ARGV[a]
  local due = redis.call('ZSCORE', DUE, work_id)
  if due and tonumber(due) <= NOW then
    local state = meta_get(meta, 'state')
    if state == 'scheduled' or state == 'retrying' or state == 'waiting'
      or state == 'awaiting' then
      queue_item(meta, work_id, state, job, ARGV[a + 2], ARGV[a + 1])
      -- The time it was due, for the lateness its worker reports (acquire reads and drops it).
      redis.call('HSET', meta, 'qdue', due)
      queued = queued + 1
    else
      redis.call('ZREM', DUE, work_id)
    end
  end
end
local head = redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')
local next_due = -1
if head[2] then next_due = tonumber(head[2]) end
return {queued, next_due, NOW}
