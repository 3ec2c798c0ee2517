--[[
  Record in the ticket index what tickets just written to a sink other than the default one
  say (lua/append-tickets.lua does it for the default sink): per key the seq and the value
  digest of its ticket, only where that seq is newer than the one recorded. A deletion is
  recorded with an empty digest (a tombstone) for the same reason.

  Input:
    KEYS    index hashes (one per partition; all of one slot, their sink shard's)
    ARGV    groups of four: index of the hash in KEYS, key, seq ('ms-n'), digest

  Output:
    number of entries written

  Seq '0-0' adopts what Redis holds without a ticket (a partition's first coverage): any
  ticket's seq is newer, and it never replaces an entry.
]]
--- @include "stream-id"
--- @include "record-ticket"
local written = 0
for i = 1, #ARGV, 4 do
  written = written + recordTicket(KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
end
return written
