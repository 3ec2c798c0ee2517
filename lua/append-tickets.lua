--[[
  Append a batch of tickets to a sink stream and record them in the ticket index in one
  step: one call a job instead of an XADD a ticket and an index write after them, and the
  index can never be ahead of the sink it describes, not even after a failover.

  Input:
    KEYS[1]   the sink stream (shard)
    KEYS[2..] index hashes (one per partition; all in the stream's slot)
    ARGV[1]   MAXLEN ~ of the stream; 0: never trimmed
    ARGV[2..] per ticket: position of its index hash in KEYS, key, seq ('ms-n'), digest,
              number of stream fields and values that follow, then those fields and values

  Output:
    number of tickets appended
]]
--- @include "stream-id"
--- @include "record-ticket"
local stream = KEYS[1]
local maxLen = tonumber(ARGV[1])
local i, appended = 2, 0
while i <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  local entry = {}
  for j = 1, n do entry[j] = ARGV[i + 4 + j] end
  if maxLen > 0 then
    redis.call('XADD', stream, 'MAXLEN', '~', maxLen, '*', unpack(entry))
  else
    redis.call('XADD', stream, '*', unpack(entry))
  end
  recordTicket(KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  appended = appended + 1
  i = i + 5 + n
end
return appended
