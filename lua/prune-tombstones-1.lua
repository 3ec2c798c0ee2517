--[[
  Forget tombstones of the ticket index older than a cutoff: they only keep a late job of a
  deleted key from recording an older value, and jobs do not live that long.

  Input:
    KEYS[1] index hash
    ARGV[1] cutoff, Redis ms: tombstones whose seq is older go
    ARGV[2..] keys whose entry was read as a tombstone

  Output:
    number of entries removed
]]
local cutoff = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local entry = redis.call('HGET', KEYS[1], ARGV[i])
  if entry then
    local ms, digest = string.match(entry, '^(%d+)-%d+ (.*)$')
    if digest == '' and tonumber(ms) < cutoff then
      redis.call('HDEL', KEYS[1], ARGV[i])
      removed = removed + 1
    end
  end
end
return removed
