--[[
  Renew a held lease and move the partition's coverage mark to now.

  Input:
    KEYS[1] lease key
    KEYS[2] covered key
    ARGV[1] worker id
    ARGV[2] fencing token the worker holds
    ARGV[3] lease ttl in ms

  Output:
    now   Redis time (ms) of the renewal
    -2    the lease is gone or carries another token: it was superseded (LeaseCode.Superseded)
]]
local lease = redis.call('HMGET', KEYS[1], 'owner', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return -2
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'at', now, 'owner', ARGV[1])
return now
