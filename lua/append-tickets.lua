--[[
  Append a batch of tickets to a sink stream and record them in the ticket index in one
  step: one call a job instead of an XADD a ticket and an index write after them, and the
  index can never be ahead of the sink it describes, not even after a failover.

  The stream's field names are written here, not sent with every ticket: a ticket travels as
  its 12 values (half the arguments, and the bytes, of its fields and values).

  Input:
    KEYS[1]   the sink stream (shard)
    KEYS[2..] index hashes (one per partition; all in the stream's slot)
    ARGV[1]   MAXLEN ~ of the stream; 0: never trimmed
    ARGV[2]   the worker making the tickets
    ARGV[3..] 12 per ticket: position of its index hash in KEYS, key, seq ('ms-n'), digest, id,
              event, type, '1' when a value follows ('0' when the key does not exist), value
              ('' when none), partition, slot, dirtyAt, createdAt

  Output:
    number of tickets appended
]]
--- @include "stream-id"
--- @include "record-ticket"
local stream = KEYS[1]
local maxLen = tonumber(ARGV[1])
local worker = ARGV[2]
local i, appended = 3, 0
while i <= #ARGV do
  local key, seq = ARGV[i + 1], ARGV[i + 2]
  local entry = {'id', ARGV[i + 4], 'key', key, 'event', ARGV[i + 5], 'type', ARGV[i + 6]}
  if ARGV[i + 7] == '1' then
    entry[9] = 'value'
    entry[10] = ARGV[i + 8]
  end
  local n = #entry
  entry[n + 1], entry[n + 2] = 'seq', seq
  entry[n + 3], entry[n + 4] = 'partition', ARGV[i + 9]
  entry[n + 5], entry[n + 6] = 'slot', ARGV[i + 10]
  entry[n + 7], entry[n + 8] = 'worker', worker
  entry[n + 9], entry[n + 10] = 'dirtyAt', ARGV[i + 11]
  entry[n + 11], entry[n + 12] = 'createdAt', ARGV[i + 12]
  if maxLen > 0 then
    redis.call('XADD', stream, 'MAXLEN', '~', maxLen, '*', unpack(entry))
  else
    redis.call('XADD', stream, '*', unpack(entry))
  end
  recordTicket(KEYS[tonumber(ARGV[i])], key, seq, ARGV[i + 3])
  appended = appended + 1
  i = i + 13
end
return appended
