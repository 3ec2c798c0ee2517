#!lua flags=no-writes,allow-cross-slot-keys
--[[
  Read many partitions' leases of one Redis node in one call: a worker looks at every lease when
  membership changes and every few seconds, and a command per partition made that look cost as
  many round trips as there are partitions.

  The leases are of many slots, all served by the node the call goes to; only the first is
  declared (see lua/renew-leases-1.lua). A refused call is read lease by lease
  (lib/lease-keeper.ts).

  Input:
    KEYS[1]   the first lease key (routing)
    ARGV      the lease keys

  Output:
    per lease, in order: {owner, token, offer}, each false when absent
]]
local replies = {}
for i = 1, #ARGV do
  replies[i] = redis.call('HMGET', ARGV[i], 'owner', 'token', 'offer')
end
return replies
