--[[
  Acknowledge dirty-stream entries whose ticket job is enqueued, and delete them
  (lua/includes/ack-dirty.lua).

  Input:
    KEYS[1] dirty stream
    ARGV[1] consumer group
    ARGV[2..] entry ids

  Output:
    number of entries acknowledged
]]
--- @include "ack-dirty"
return ackDirty(KEYS[1], ARGV[1], {unpack(ARGV, 2)})
