-- Benchmark fast path (never used by Roost): copy a real finished item n times.
-- Writes for each copy exactly what the item has: its meta hash, item and snapshot JSON
-- (work id replaced), its state index entry (one ms older per copy) and its events.
-- Generated key names: only for a private, single-node benchmark server.
-- ARGV: key base ('<prefix>:{<namespace>}:'), template work id, state, first index, count,
-- events cap, events as JSON (a list of flat field lists, 'w' already blanked).
local base, tid, state = ARGV[1], ARGV[2], ARGV[3]
local first, n, maxlen = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local events = cjson.decode(ARGV[7])
local meta = redis.call('HGETALL', base .. 'w:' .. tid)
local item = redis.call('GET', base .. 'w:' .. tid .. ':item')
local snap = redis.call('GET', base .. 'w:' .. tid .. ':snap')
local index = base .. 'state:' .. state
local score = tonumber(redis.call('ZSCORE', index, tid))
local stream = base .. 'events'
for i = first, first + n - 1 do
  local id = string.format('c10e%028d', i)
  local key = base .. 'w:' .. id
  redis.call('HSET', key, unpack(meta))
  redis.call('SET', key .. ':item', (string.gsub(item, tid, id)))
  if snap then redis.call('SET', key .. ':snap', (string.gsub(snap, tid, id))) end
  redis.call('ZADD', index, score - i - 1, id)
  for _, fields in ipairs(events) do
    for j = 1, #fields, 2 do
      if fields[j] == 'w' then fields[j + 1] = id end
    end
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  end
end
return n
