--[[
  Acquire a free partition lease.

  Input:
    KEYS[1] lease key    (hash: owner, token, since)
    KEYS[2] token key    (fencing counter, never expires)
    KEYS[3] covered key  (hash, never expires: at = Redis ms up to which the partition was
                         covered, owner = the worker that covered it)
    ARGV[1] worker id
    ARGV[2] lease ttl in ms

  Output:
    {token, now, covered, previous owner}
                            acquired: the new fencing token, Redis time (ms), the previous
                            coverage mark (-1 when the partition was never covered) and the
                            worker that left it ('' when none)
    -1                      another worker holds the lease (LeaseCode.Held)

  A worker that already holds the lease gets it back unchanged (its token), so a retried
  call after a lost reply is harmless.
]]
--- @include "redis-now"
local now = redisNow()

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  if owner ~= ARGV[1] then
    return -1
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(redis.call('HGET', KEYS[1], 'token')), now, now, ARGV[1]}
end

local previous = redis.call('HMGET', KEYS[3], 'at', 'owner')
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'since', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], 'at', now, 'owner', ARGV[1])
return {token, now, tonumber(previous[1] or '-1'), previous[2] or ''}
