#!lua flags=allow-cross-slot-keys
--[[
  Acknowledge entries of many dirty streams of one Redis node in one call, each as
  lua/ack-dirty-1.lua does one. The streams are of many slots, all served by the node the call
  goes to; only the first is declared (see lua/renew-leases-1.lua). A refused call is
  acknowledged stream by stream (lib/dirty-reader.ts).

  Input:
    KEYS[1]   the first stream (routing)
    ARGV[1]   consumer group
    ARGV[2..] per stream: its name, the number of ids that follow, the ids

  Output:
    number of entries acknowledged in all
]]
--- @include "ack-dirty"
local acked, i = 0, 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  acked = acked + ackDirty(ARGV[i], ARGV[1], {unpack(ARGV, i + 2, i + 1 + n)})
  i = i + 2 + n
end
return acked
