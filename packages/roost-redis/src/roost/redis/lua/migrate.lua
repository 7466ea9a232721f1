-- Move deliveries off the queue's single list of the layout before per-engine delivery onto
-- the route's list (the items' engine): each goes to the front, so the caller passes them
-- newest first and the list keeps their order ahead of anything queued since. A delivery
-- someone took meanwhile is left alone; one whose item moved on is dropped.
-- KEYS: @states @due @saq_queued @saq_incomplete @engines old_queued old_incomplete jobs*(meta
--     job new_job)
-- ARGV: @saq_name @engine count jobs*(work_id dispatch new_dispatch new_job_suffix)
-- REPLY: moved dropped
local old_queued, old_incomplete = KEYS[NS_KEYS + 1], KEYS[NS_KEYS + 2]
local n = tonumber(ARGV[NS_ARGS + 1])
local moved, dropped = 0, 0
for i = 0, n - 1 do
  local meta, job, new_job = KEYS[NS_KEYS + 3 + i * 3], KEYS[NS_KEYS + 4 + i * 3],
    KEYS[NS_KEYS + 5 + i * 3]
  local a = NS_ARGS + 2 + i * 4
  local work_id, dispatch = ARGV[a], ARGV[a + 1]
  local f = redis.call('HMGET', meta, 'state', 'disp', 'engine')
  local current = f[1] == 'queued' and f[2] == dispatch
  -- A current delivery of another engine's item waits for the call with that route.
  if not (current and f[3] ~= ENGINE) and redis.call('LREM', old_queued, -1, job) == 1 then
    redis.call('ZREM', old_incomplete, job)
    redis.call('DEL', job)
    if current then
      queue_item(meta, work_id, 'queued', new_job, ARGV[a + 3], ARGV[a + 2], true)
      moved = moved + 1
    else
      dropped = dropped + 1
    end
  end
end
return {moved, dropped}
