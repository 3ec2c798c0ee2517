#!lua flags=no-writes
--[[
  Count the keys of every slot in a range, on the node the call goes to, in one call: a
  reconciliation pass then lists the keys of only the slots that hold some. One
  CLUSTER GETKEYSINSLOT a slot, empty or not, was most of what an idle worker spent.

  A slot the node does not serve counts 0 there: the caller asks each node only for its own.

  Input:
    ARGV[1]   first slot
    ARGV[2]   last slot

  Output:
    per slot of [first, last], in order: its number of keys on this node
]]
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local counts = {}
for slot = first, last do
  counts[#counts + 1] = redis.call('CLUSTER', 'COUNTKEYSINSLOT', slot)
end
return counts
