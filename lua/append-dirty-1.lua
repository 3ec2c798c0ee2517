#!lua flags=allow-cross-slot-keys
--[[
  Append dirty keys to many dirty streams of one Redis node in one call, an XADD each: under a
  steady load a flush finds a key or two per partition, and would otherwise cost a command per
  key. The streams are of many slots, all served by the node the call goes to; only the first is
  declared (see lua/renew-leases-1.lua). A refused call is appended stream by stream
  (lib/dirty-writer.ts).

  Input:
    KEYS[1]   the first stream (routing)
    ARGV[1..3] the entry's field names: of the key, of its last event, of the time it was seen
    ARGV[4..] per stream: its name, the number of dirty keys that follow, then per key: the
              key, its last event, the time it was seen (epoch ms)

  Output:
    per stream, in order: the ids of its new entries, in order (an owner enqueues its own
    appends from memory with them, without reading them back)
]]
local ids, i = {}, 4
while i <= #ARGV do
  local stream, n = ARGV[i], tonumber(ARGV[i + 1])
  local added = {}
  for j = i + 2, i + 1 + 3 * n, 3 do
    added[#added + 1] = redis.call('XADD', stream, '*', ARGV[1], ARGV[j], ARGV[2], ARGV[j + 1], ARGV[3], ARGV[j + 2])
  end
  ids[#ids + 1] = added
  i = i + 2 + 3 * n
end
return ids
