--[[
  Acquire a free partition lease.

  Input:
    KEYS[1] lease key    (hash: owner, token, since)
    KEYS[2] token key    (fencing counter, never expires)
    KEYS[3] covered key  (Redis ms up to which the partition was covered, never expires)
    ARGV[1] worker id
    ARGV[2] lease ttl in ms

  Output:
    {token, now, covered}   acquired: the new fencing token, Redis time (ms) and the
                            previous coverage mark (-1 when the partition was never covered)
    -1                      another worker holds the lease (LeaseCode.Held)

  A worker that already holds the lease gets it back unchanged (its token), so a retried
  call after a lost reply is harmless.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  if owner ~= ARGV[1] then
    return -1
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(redis.call('HGET', KEYS[1], 'token')), now, now}
end

local covered = tonumber(redis.call('GET', KEYS[3]) or '-1')
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'since', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], now)
return {token, now, covered}
