--[[
  Record a worker's heartbeat and return the live members, dropping the silent ones.

  A caller that was itself silent for longer than the ttl (its own last heartbeat is that old) comes
  back from a time when Redis did not answer it: an outage or a failover, which silenced the others
  as well. It drops nobody then, and gives each silent member the ttl from now to be heard again: a
  member that crashed meanwhile is dropped one ttl later, and the live ones keep their partitions
  instead of being counted gone by whoever heartbeats first.

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

local previous = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
local silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. oldest)
if previous and previous < oldest then
  for _, member in ipairs(silent) do
    redis.call('ZADD', KEYS[1], now, member)
  end
  return {redis.call('ZRANGEBYSCORE', KEYS[1], oldest, '+inf'), {}}
end
if #silent > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. oldest)
end
return {redis.call('ZRANGEBYSCORE', KEYS[1], oldest, '+inf'), silent}
