-- A key's type and raw value, read in one step: HGETALL, LRANGE 0 -1, SMEMBERS,
-- ZRANGE WITHSCORES or XRANGE by type; nil value for a missing key or a module type.
local function readValue(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'string' then return kind, redis.call('GET', key) end
  if kind == 'hash' then return kind, redis.call('HGETALL', key) end
  if kind == 'list' then return kind, redis.call('LRANGE', key, 0, -1) end
  if kind == 'set' then return kind, redis.call('SMEMBERS', key) end
  if kind == 'zset' then return kind, redis.call('ZRANGE', key, 0, -1, 'WITHSCORES') end
  if kind == 'stream' then return kind, redis.call('XRANGE', key, '-', '+') end
  return kind, nil
end
