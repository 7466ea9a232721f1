-- Store a running step's progress.
-- KEYS: @events meta
-- ARGV: @events_maxlen @worker work_id token epoch report
-- REPLY OK
-- REPLY STALE
-- REPLY GONE
local meta = KEYS[NS_KEYS + 1]
local work_id, token, epoch = ARGV[NS_ARGS + 1], ARGV[NS_ARGS + 2], ARGV[NS_ARGS + 3]
local err = check_lease(meta, token, epoch)
if err then return {err} end
redis.call('HSET', meta, 'prog', ARGV[NS_ARGS + 4])
emit('progress', work_id, meta_get(meta, 'step'), tonumber(meta_get(meta, 'v')),
  ARGV[NS_ARGS + 4])
return {'OK'}
