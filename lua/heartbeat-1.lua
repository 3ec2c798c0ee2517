--[[
  Record a worker's heartbeat and return the live members, dropping the silent ones.

  Input:
    KEYS[1] members sorted set (member: worker id, score: last heartbeat, Redis ms)
    ARGV[1] worker id
    ARGV[2] member ttl in ms: a member silent for longer is dropped

  Output:
    {live, dropped}   two arrays of worker ids; live includes the caller
]]
--- @include "redis-now"
local now = redisNow()
local oldest = now - tonumber(ARGV[2])

redis.call('ZADD', KEYS[1], now, ARGV[1])
local dropped = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. oldest)
if #dropped > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. oldest)
end
return {redis.call('ZRANGEBYSCORE', KEYS[1], oldest, '+inf'), dropped}
