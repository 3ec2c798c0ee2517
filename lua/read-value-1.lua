--[[
  Read a key's type and value in one atomic step, so the type cannot change between the
  two (a ticket never pairs a type with another type's value).

  Input:
    KEYS[1] the watched key

  Output:
    {type}                       the key does not exist ('none')
    {'string', value}
    {'hash'|'list'|'set'|'zset', flat array}   HGETALL, LRANGE 0 -1, SMEMBERS, ZRANGE WITHSCORES
    {'stream', flat array}       id, field, value, field, value, ... per entry, each entry
                                 as {id, {fields}}
    {other}                      a type this script does not read (a module type)
]]
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' then
  return {kind, redis.call('GET', KEYS[1])}
elseif kind == 'hash' then
  return {kind, redis.call('HGETALL', KEYS[1])}
elseif kind == 'list' then
  return {kind, redis.call('LRANGE', KEYS[1], 0, -1)}
elseif kind == 'set' then
  return {kind, redis.call('SMEMBERS', KEYS[1])}
elseif kind == 'zset' then
  return {kind, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}
elseif kind == 'stream' then
  return {kind, redis.call('XRANGE', KEYS[1], '-', '+')}
end
return {kind}
