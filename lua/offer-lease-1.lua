--[[
  Offer a held lease to the worker the assignment gives the partition to (graceful
  handover, step 1). The owner keeps the lease, and keeps forwarding, until the new
  owner takes it over.

  Input:
    KEYS[1] lease key
    ARGV[1] worker id of the owner
    ARGV[2] fencing token the owner holds
    ARGV[3] worker id the lease is offered to

  Output:
    1     offered
    -2    the owner's token was superseded: nothing changed (LeaseCode.Superseded)
]]
--- @include "holds-lease"
if not holdsLease(KEYS[1], ARGV[1], ARGV[2]) then
  return -2
end
redis.call('HSET', KEYS[1], 'offer', ARGV[3])
return 1
