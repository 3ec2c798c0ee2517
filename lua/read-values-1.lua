#!lua flags=no-writes,allow-cross-slot-keys
--[[
  Read many keys of one Redis node in one call, each as lua/read-value-1.lua reads one (type,
  digest and value in one atomic step): a ticket job's keys cost one call a node, not one a key.

  The keys are of many slots, all served by the node the call goes to. Redis Cluster refuses
  declared KEYS of different slots even with allow-cross-slot-keys, so only the first key is
  declared (it routes the call) and every key is passed in ARGV; a call refused because a slot
  moved is read again key by key (lib/scripts.ts).

  Input:
    KEYS[1]   the first key (routing)
    ARGV      the keys

  Output:
    per key, in order: {type, digest} or {type, digest, value}, as lua/read-value-1.lua
]]
--- @include "read-value"
--- @include "value-digest"
local replies = {}
for i = 1, #ARGV do
  local kind, value = readValue(ARGV[i])
  local digest = valueDigest(kind, value)
  if value == nil then
    replies[i] = {kind, digest}
  else
    replies[i] = {kind, digest, value}
  end
end
return replies
