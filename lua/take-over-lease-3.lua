--[[
  Take over a lease offered to the caller (graceful handover, step 2). The caller is
  already subscribed on every node of the partition's slots; the old owner stops
  forwarding once it sees, in Redis, that the lease is no longer its own.

  Input:
    KEYS[1] lease key
    KEYS[2] token key    (fencing counter)
    KEYS[3] covered key
    ARGV[1] worker id taking over
    ARGV[2] worker id of the current owner, as the caller read it
    ARGV[3] lease ttl in ms

  Output:
    {token, now, covered}
                   taken over: the new fencing token, Redis time (ms), and the coverage mark
                   the old owner's last renewal left (what its listeners had heard by then; -1
                   when none)
    -3             not offered to the caller, or the owner changed (LeaseCode.NotOffered)

  The coverage mark moves to now: the old owner forwards until it learns of the take-over and
  the new owner from now on. The mark returned tells from when on the old owner may not have
  heard everything (a listener cut and not yet noticed): the new owner replays, or repairs,
  from there.
]]
--- @include "redis-now"
local lease = redis.call('HMGET', KEYS[1], 'owner', 'offer')
if lease[1] ~= ARGV[2] or lease[2] ~= ARGV[1] then
  return -3
end

local now = redisNow()
local covered = tonumber(redis.call('HGET', KEYS[3], 'at') or '-1')
local token = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'since', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[3], 'at', now, 'owner', ARGV[1])
return {token, now, covered}
