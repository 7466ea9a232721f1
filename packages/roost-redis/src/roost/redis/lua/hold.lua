-- Renew a key that names its holder, or let it go, only while it still names that holder
-- (the event deliverer's key, `events:pump`): a holder that stalled past the key's TTL must
-- not extend or delete its successor's. ttl_ms 0 lets the key go.
-- KEYS: key
-- ARGV: holder ttl_ms
-- REPLY: held
local key = KEYS[NS_KEYS + 1]
local holder, ttl = ARGV[NS_ARGS + 1], tonumber(ARGV[NS_ARGS + 2])
if redis.call('GET', key) ~= holder then return 0 end
if ttl > 0 then
  redis.call('PEXPIRE', key, ttl)
else
  redis.call('DEL', key)
end
return 1
