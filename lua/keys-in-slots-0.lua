#!lua flags=no-writes
--[[
  List the keys of many slots, on the node the call goes to, in one call: a reconciliation pass
  lists a partition's slots that hold keys, and in a sparse keyspace one
  CLUSTER GETKEYSINSLOT a slot was a command for a key or two.

  A slot the node does not serve lists nothing there: the caller asks each node only for its own.

  Input:
    ARGV   pairs: a slot, the most keys listed from it

  Output:
    per pair, in order: the keys listed (as many as asked at most)
]]
local lists = {}
for i = 1, #ARGV, 2 do
  lists[#lists + 1] = redis.call('CLUSTER', 'GETKEYSINSLOT', ARGV[i], ARGV[i + 1])
end
return lists
