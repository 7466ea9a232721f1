-- Raise an item's budgets (an operator, after "budget exceeded"). Each raise adds to the
-- current limit (the meta's 'bsteps', 'bcost', 'bruntime', else the item's own), or, for a
-- kind the item had no limit of, to what it used so far.
-- KEYS: @events meta
-- ARGV: @events_maxlen @worker work_id add_steps add_cost add_runtime_ms own_steps own_cost
--     own_runtime_ms
-- REPLY OK: steps cost runtime_ms
-- REPLY GONE
-- REPLY TERMINAL: state
-- add_*: 0 leaves that one; own_*: the item's own limits (-1: none). The reply gives the
-- limits now (-1: none).
local meta = KEYS[NS_KEYS + 1]
local work_id = ARGV[NS_ARGS + 1]
local add = {tonumber(ARGV[NS_ARGS + 2]), tonumber(ARGV[NS_ARGS + 3]), tonumber(ARGV[NS_ARGS + 4])}
local own = {tonumber(ARGV[NS_ARGS + 5]), tonumber(ARGV[NS_ARGS + 6]), tonumber(ARGV[NS_ARGS + 7])}
local f = redis.call('HMGET', meta, 'state', 'bsteps', 'bcost', 'bruntime', 'nsteps', 'spent',
  'created', 'step', 'v')
if not f[1] then return {'GONE'} end
if TERMINAL[f[1]] then return {'TERMINAL', f[1]} end
local fields = {'bsteps', 'bcost', 'bruntime'}
local used = {tonumber(f[5] or '0'), tonumber(f[6] or '0'), NOW - tonumber(f[7] or NOW)}
local out = {'OK'}
for i = 1, 3 do
  local limit = tonumber(f[i + 1] or own[i])
  if add[i] > 0 then
    if limit < 0 then limit = used[i] end
    limit = limit + add[i]
    redis.call('HSET', meta, fields[i], tostring(limit))
  end
  out[#out + 1] = tostring(limit)
end
emit('budget_raised', work_id, f[8], tonumber(f[9]), cjson.encode({steps = out[2],
  cost = out[3], runtime_ms = out[4]}))
return out
