#!lua flags=no-writes
--[[
  Read a key's type, value and digest in one atomic step, so the type cannot change between
  the reads and the digest (written to the ticket index) describes exactly the value the
  ticket carries.

  Input:
    KEYS[1] the watched key

  Output:
    {type, digest}               the key does not exist ('none', digest '') or has a type
                                 this script does not read (a module type)
    {type, digest, value}        string: the value; hash, list, set, zset: the flat reply of
                                 HGETALL, LRANGE 0 -1, SMEMBERS, ZRANGE WITHSCORES; stream:
                                 XRANGE (each entry {id, {fields}})
]]
--- @include "read-value"
--- @include "value-digest"
local kind, value = readValue(KEYS[1])
local digest = valueDigest(kind, value)
if value == nil then
  return {kind, digest}
end
return {kind, digest, value}
