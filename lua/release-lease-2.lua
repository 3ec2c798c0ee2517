--[[
  Release a held lease on a graceful stop, leaving the coverage mark at now so the next
  owner knows from when on nobody listened.

  Input:
    KEYS[1] lease key
    KEYS[2] covered key
    ARGV[1] worker id
    ARGV[2] fencing token the worker holds

  Output:
    now   released at this Redis time (ms)
    -2    the token was superseded: nothing changed (LeaseCode.Superseded)
]]
--- @include "holds-lease"
--- @include "redis-now"
if not holdsLease(KEYS[1], ARGV[1], ARGV[2]) then
  return -2
end

local now = redisNow()
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'at', now, 'owner', ARGV[1])
return now
