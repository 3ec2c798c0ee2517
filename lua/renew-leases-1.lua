#!lua flags=allow-cross-slot-keys
--[[
  Renew many held leases of one Redis node in one call, each as lua/renew-lease-2.lua renews
  one: an idle worker would otherwise spend a script call per partition per renewal.

  The partitions' keys live in many slots of the node. Redis Cluster refuses declared KEYS of
  different slots even with allow-cross-slot-keys, so only the first lease is declared (it
  routes the call) and every key is passed in ARGV; the flag lets the script reach them as long
  as this node serves them. A call refused because a slot moved is retried partition by
  partition (lib/lease-keeper.ts).

  Input:
    KEYS[1]   lease key of the first partition (routing)
    ARGV[1]   worker id
    ARGV[2]   lease ttl in ms
    ARGV[3..] per partition: lease key, covered key, fencing token the worker holds, Redis ms
              up to which it heard every event of the partition

  Output:
    per partition: Redis time (ms) of the renewal, or -2 when the lease is gone or carries
    another token (LeaseCode.Superseded)
]]
--- @include "holds-lease"
--- @include "redis-now"
--- @include "coverage-mark"
local now = redisNow()
local replies = {}
for i = 3, #ARGV, 4 do
  local lease, covered = ARGV[i], ARGV[i + 1]
  if holdsLease(lease, ARGV[1], ARGV[i + 2]) then
    redis.call('PEXPIRE', lease, ARGV[2])
    redis.call('HSET', covered, 'at', coverageMark(now, tonumber(ARGV[i + 3])), 'owner', ARGV[1])
    replies[#replies + 1] = now
  else
    replies[#replies + 1] = -2
  end
end
return replies
