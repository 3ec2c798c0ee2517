#!lua flags=no-writes,allow-cross-slot-keys
--[[
  Digests of what keys hold now, for comparing Redis with the ticket index (exact repair,
  reconciliation) without moving the values. The keys are of many slots, all served by the
  node the call goes to: a pass over a sparse keyspace holds a key or two a slot, and a call a
  slot was most of what a pass cost its worker. Only the first key is declared (see
  lua/read-values-1.lua).

  Input:
    KEYS[1]   the first key (routing)
    ARGV      watched keys

  Output:
    {digest, ...}   one per key, in order; '' for a key that does not exist
]]
--- @include "read-value"
--- @include "value-digest"
local digests = {}
for i = 1, #ARGV do
  digests[i] = valueDigest(readValue(ARGV[i]))
end
return digests
