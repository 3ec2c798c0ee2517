#!lua flags=no-writes
--[[
  Count the keys of every slot in a range, on the node the call goes to, in one call: a
  reconciliation pass then lists the keys of only the slots that hold some. One
  CLUSTER GETKEYSINSLOT a slot, empty or not, was most of what an idle worker spent.

  The project's own keys (a partition's lease, fencing token, coverage mark and dirty stream)
  are never tickets' keys, yet they sit in one slot a partition: a slot holding at most 8 keys
  is listed here and its own keys are not counted, so an idle pass lists no slot of a
  partition's. A slot holding more is counted whole and the caller filters what it lists: the
  bound keeps this call's own listing to 8 keys a slot, whatever the keyspace.

  A slot the node does not serve counts 0 there: the caller asks each node only for its own.

  Input:
    ARGV[1]   first slot
    ARGV[2]   last slot
    ARGV[3]   the project's key prefix, `<prefix>:`

  Output:
    per slot of [first, last], in order: its number of keys on this node, less its own keys
    where it holds at most 8
]]
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local own = ARGV[3]
local counts = {}
for slot = first, last do
  local n = redis.call('CLUSTER', 'COUNTKEYSINSLOT', slot)
  if n > 0 and n <= 8 then
    for _, key in ipairs(redis.call('CLUSTER', 'GETKEYSINSLOT', slot, n)) do
      if string.sub(key, 1, #own) == own then n = n - 1 end
    end
  end
  counts[#counts + 1] = n
end
return counts
