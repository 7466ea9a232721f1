-- Put delivered jobs back at the head of the route's SAQ queue (a stopping worker took them).
-- KEYS: @saq_queued @saq_active
-- ARGV: jobs*
-- REPLY: count
local n = 0
for i = NS_ARGS + 1, #ARGV do
  if redis.call('LREM', SAQ_ACTIVE, 1, ARGV[i]) == 1 then
    redis.call('LPUSH', SAQ_QUEUED, ARGV[i])
    n = n + 1
  end
end
return n
