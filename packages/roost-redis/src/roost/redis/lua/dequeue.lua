-- Take up to n jobs off the route's SAQ queue (one engine's) into its active list in one
-- round trip (the worker's lane for that engine blocks in BLMOVE only when this finds
-- nothing).
-- KEYS: @saq_queued @saq_active
-- ARGV: n
-- REPLY: jobs*
local out = {}
for _ = 1, tonumber(ARGV[NS_ARGS + 1]) do
  local job = redis.call('LMOVE', SAQ_QUEUED, SAQ_ACTIVE, 'LEFT', 'RIGHT')
  if not job then break end
  out[#out + 1] = job
end
return out
