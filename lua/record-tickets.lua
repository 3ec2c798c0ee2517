--[[
  Record in the ticket index what tickets just written to the sink say: per key the seq and
  the value digest of its ticket, only where that seq is newer than the one recorded, so a
  job that finishes late never overwrites a newer ticket. A deletion is recorded with an
  empty digest (a tombstone) for the same reason.

  Input:
    KEYS    index hashes (one per partition; all of one slot, the sink's)
    ARGV    groups of four: index of the hash in KEYS, key, seq ('ms-n'), digest

  Output:
    number of entries written

  Seq '0-0' adopts what Redis holds without a ticket (a partition's first coverage): any
  ticket's seq is newer, and it never replaces an entry.
]]
--- @include "stream-id"
local written = 0
for i = 1, #ARGV, 4 do
  local index = KEYS[tonumber(ARGV[i])]
  local seq = ARGV[i + 2]
  local old = redis.call('HGET', index, ARGV[i + 1])
  if not old or streamIdAfter(seq, old) then
    redis.call('HSET', index, ARGV[i + 1], seq .. ' ' .. ARGV[i + 3])
    written = written + 1
  end
end
return written
