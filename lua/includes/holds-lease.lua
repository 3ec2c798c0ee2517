-- Whether the worker holds the lease with this fencing token (ARGV values are strings).
local function holdsLease(leaseKey, owner, token)
  local lease = redis.call('HMGET', leaseKey, 'owner', 'token')
  return lease[1] == owner and lease[2] == token
end
