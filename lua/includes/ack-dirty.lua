-- Acknowledges dirty-stream entries, then trims every entry that no consumer still holds.
-- Entries up to the group's last-delivered id that are not pending are done, so the stream's
-- length is its backlog; the oldest pending entry (of any consumer, e.g. one that crashed)
-- bounds the trim so it can still be claimed. Returns the number acknowledged.
local function ackDirty(stream, group, ids)
  local acked = redis.call('XACK', stream, group, unpack(ids))
  local pending = redis.call('XPENDING', stream, group)
  local minid
  if pending[1] > 0 then
    minid = pending[2]
  else
    for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      local name, last
      for i = 1, #info, 2 do
        if info[i] == 'name' then name = info[i + 1] end
        if info[i] == 'last-delivered-id' then last = info[i + 1] end
      end
      if name == group then
        -- MINID keeps its own id: trim up to the id just after the last delivered one.
        local ms, seq = string.match(last, '^(%d+)-(%d+)$')
        minid = ms .. '-' .. (tonumber(seq) + 1)
      end
    end
  end
  if minid then
    redis.call('XTRIM', stream, 'MINID', minid)
  end
  return acked
end
