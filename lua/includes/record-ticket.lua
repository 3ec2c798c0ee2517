-- Records a ticket in its partition's index hash, only where its seq is newer than the one
-- recorded: a job that finishes late never overwrites a newer ticket. Returns 1 if written.
local function recordTicket(index, key, seq, digest)
  local old = redis.call('HGET', index, key)
  if old and not streamIdAfter(seq, old) then return 0 end
  redis.call('HSET', index, key, seq .. ' ' .. digest)
  return 1
end
