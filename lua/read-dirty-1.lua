#!lua flags=allow-cross-slot-keys
--[[
  Read new entries of many dirty streams of one Redis node in one call, each as XREADGROUP
  reads one (the owner's consumer group, no blocking): at a few writes a second per partition a
  reading round would otherwise cost a command per partition. The streams are of many slots,
  all served by the node the call goes to; only the first is declared (see
  lua/renew-leases-1.lua). A refused call is read stream by stream (lib/dirty-reader.ts).

  Input:
    KEYS[1]   the first stream (routing)
    ARGV[1]   consumer group
    ARGV[2]   consumer
    ARGV[3]   most entries read from each stream
    ARGV[4..] the streams

  Output:
    per stream, in order: its new entries as XREADGROUP gives them ({id, {field, value, ...}}),
    an empty array when there are none
]]
local replies = {}
for i = 4, #ARGV do
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', ARGV[i], '>')
  replies[i - 3] = read and read[1][2] or {}
end
return replies
