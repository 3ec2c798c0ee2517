--[[
  Renew a held lease and move the partition's coverage mark up to what the owner heard.

  Input:
    KEYS[1] lease key
    KEYS[2] covered key
    ARGV[1] worker id
    ARGV[2] fencing token the worker holds
    ARGV[3] lease ttl in ms
    ARGV[4] Redis ms up to which the owner heard every event of the partition (its
            listeners' last answered PING): the mark never claims more than that, nor less than 0

  Output:
    now   Redis time (ms) of the renewal
    -2    the lease is gone or carries another token: it was superseded (LeaseCode.Superseded)
]]
--- @include "holds-lease"
--- @include "redis-now"
--- @include "coverage-mark"
if not holdsLease(KEYS[1], ARGV[1], ARGV[2]) then
  return -2
end

local now = redisNow()
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'at', coverageMark(now, tonumber(ARGV[4])), 'owner', ARGV[1])
return now
