-- Acknowledges dirty-stream entries and deletes them: an acknowledged entry is done, so the
-- stream's length is its backlog (entries not yet read, and entries read but not acknowledged,
-- which stay for a claim). Deleting exactly the acknowledged ids costs one command, where
-- finding a trim point costs three (the oldest pending entry, the group's last delivered id,
-- the trim). Returns the number acknowledged.
local function ackDirty(stream, group, ids)
  local acked = redis.call('XACK', stream, group, unpack(ids))
  redis.call('XDEL', stream, unpack(ids))
  return acked
end
