-- Renew leases held by one worker (a batch).
-- KEYS: @leases items*(meta res*)
-- ARGV: @lease_ttl count items*(work_id token epoch nres)
-- REPLY: now statuses*
-- A status per item: 'OK', 'CANCELLED' (renewed, but an operator cancelled the item) or
-- 'LOST' (the lease expired or passed to another worker).
local n = tonumber(ARGV[NS_ARGS + 1])
local out = {NOW}
local k, a = NS_KEYS + 1, NS_ARGS + 2
local lexp = NOW + LEASE_TTL
for _ = 1, n do
  local meta, work_id, token, epoch = KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local nres = tonumber(ARGV[a + 3])
  local err = check_lease(meta, token, epoch)
  if err then
    out[#out + 1] = 'LOST'
  else
    redis.call('HSET', meta, 'lexp', lexp)
    redis.call('ZADD', LEASES, lexp, work_id)
    for i = 1, nres do redis.call('PEXPIRE', KEYS[k + i], LEASE_TTL) end
    if meta_get(meta, 'state') == 'cancelled' then
      out[#out + 1] = 'CANCELLED'
    else
      out[#out + 1] = 'OK'
    end
  end
  k = k + 1 + nres
  a = a + 4
end
return out
