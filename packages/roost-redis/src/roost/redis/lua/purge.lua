-- Delete finished items older than the retention, with their index entries (no dangling
-- entries). Age is judged by the server's clock: an item must have finished retention_ms
-- before NOW.
-- KEYS: @states items*(meta item snap hist idem sig kids)
-- ARGV: count retention_ms work_ids*
-- REPLY: deleted
-- idem: the item's idempotency key's key (or a placeholder).
local n, cutoff = tonumber(ARGV[NS_ARGS + 1]), NOW - tonumber(ARGV[NS_ARGS + 2])
local deleted = 0
for i = 0, n - 1 do
  local k = NS_KEYS + 1 + i * 7
  local work_id = ARGV[NS_ARGS + 3 + i]
  local f = redis.call('HMGET', KEYS[k], 'state', 'updated', 'ltok')
  if not f[1] then
    for _, s in ipairs(STATES) do redis.call('ZREM', state_key(s), work_id) end
  elseif TERMINAL[f[1]] and tonumber(f[2]) <= cutoff and not f[3] then
    if redis.call('GET', KEYS[k + 4]) == work_id then redis.call('DEL', KEYS[k + 4]) end
    redis.call('DEL', KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 5], KEYS[k + 6])
    redis.call('ZREM', state_key(f[1]), work_id)
    deleted = deleted + 1
  end
end
return deleted
