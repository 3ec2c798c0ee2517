#!lua flags=allow-cross-slot-keys
--[[
  Claim the entries left pending in many dirty streams of one Redis node in one call, each as
  XAUTOCLAIM claims them (any consumer's, however recently read): a previous owner's, or a
  round of this one that failed before its acknowledgement. Every few sweeps an owner claims
  in all of its streams, which would otherwise cost a command a partition. The streams are of
  many slots, all served by the node the call goes to; only the first is declared (see
  lua/renew-leases-1.lua). A refused call is claimed stream by stream (lib/dirty-reader.ts).

  Input:
    KEYS[1]   the first stream (routing)
    ARGV[1]   consumer group
    ARGV[2]   consumer that takes the entries
    ARGV[3]   most entries claimed from each stream
    ARGV[4..] the streams

  Output:
    per stream, in order: the entries claimed ({id, {field, value, ...}}), an empty array when
    none was pending
]]
local replies = {}
for i = 4, #ARGV do
  local claimed = redis.call('XAUTOCLAIM', ARGV[i], ARGV[1], ARGV[2], 0, '0-0', 'COUNT', ARGV[3])
  replies[i - 3] = claimed[2]
end
return replies
