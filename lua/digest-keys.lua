#!lua flags=no-writes
--[[
  Digests of what keys hold now, for comparing Redis with the ticket index (exact repair,
  reconciliation) without moving the values.

  Input:
    KEYS    watched keys, all of one slot in a cluster (any number)

  Output:
    {digest, ...}   one per key, in order; '' for a key that does not exist
]]
--- @include "read-value"
--- @include "value-digest"
local digests = {}
for i, key in ipairs(KEYS) do
  digests[i] = valueDigest(readValue(key))
end
return digests
