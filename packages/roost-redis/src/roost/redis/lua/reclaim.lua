-- Deal with SAQ deliveries that no worker acknowledged: a worker took the job off SAQ's
-- queue and died (or stalled) before acquiring the lease. A job still unacknowledged after
-- grace_ms is re-dispatched under a new token (the old one can no longer acquire); a job
-- whose item moved on is simply acknowledged.
-- KEYS: @states @due @events @saq_queued @saq_active @saq_incomplete @strand @engines
--     jobs*(meta job new_job)
-- ARGV: @saq_name @events_maxlen @worker @engine count grace_ms jobs*(work_id dispatch
--     new_dispatch new_job_suffix)
-- REPLY: redispatched cleaned
local n, grace = tonumber(ARGV[NS_ARGS + 1]), tonumber(ARGV[NS_ARGS + 2])
local redispatched, cleaned = 0, 0
for i = 0, n - 1 do
  local meta, job, new_job = KEYS[NS_KEYS + 1 + i * 3], KEYS[NS_KEYS + 2 + i * 3],
    KEYS[NS_KEYS + 3 + i * 3]
  local a = NS_ARGS + 3 + i * 4
  local work_id, dispatch = ARGV[a], ARGV[a + 1]
  if not redis.call('LPOS', SAQ_ACTIVE, job) then
    redis.call('HDEL', STRAND, job)
  else
    local f = redis.call('HMGET', meta, 'state', 'disp')
    if f[1] ~= 'queued' or f[2] ~= dispatch then
      saq_ack(job)
      cleaned = cleaned + 1
    else
      local first = redis.call('HGET', STRAND, job)
      if not first then
        redis.call('HSET', STRAND, job, NOW)
      elseif NOW - tonumber(first) >= grace then
        saq_ack(job)
        queue_item(meta, work_id, 'queued', new_job, ARGV[a + 3], ARGV[a + 2], true)
        emit('redispatched', work_id, '', nil, '{"reason":"delivery not acknowledged"}')
        redispatched = redispatched + 1
      end
    end
  end
end
return {redispatched, cleaned}
