--[[
  Acknowledge dirty-stream entries whose ticket job is enqueued, then trim every entry
  that no consumer still holds.

  Input:
    KEYS[1] dirty stream
    ARGV[1] consumer group
    ARGV[2..] entry ids

  Output:
    number of entries acknowledged

  Entries up to the group's last-delivered id that are not pending are done, so the
  stream's length is its backlog; the oldest pending entry (of any consumer, e.g. one
  that crashed) bounds the trim so it can still be claimed.
]]
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))

local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local minid
if pending[1] > 0 then
  minid = pending[2]
else
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, last
    for i = 1, #group, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then last = group[i + 1] end
    end
    if name == ARGV[1] then
      -- MINID keeps its own id: trim up to the id just after the last delivered one.
      local ms, seq = string.match(last, '^(%d+)-(%d+)$')
      minid = ms .. '-' .. (tonumber(seq) + 1)
    end
  end
end
if minid then
  redis.call('XTRIM', KEYS[1], 'MINID', minid)
end
return acked
