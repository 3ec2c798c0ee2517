#!lua flags=allow-cross-slot-keys
--[[
  Read keys and append their tickets to a sink stream of the same Redis node in one call, each
  key read as lua/read-value-1.lua reads one and each ticket appended and recorded in the index
  as lua/append-tickets.lua does: a ticket job's keys cost one call a node instead of a read
  and then an append.

  A ticket's value is written here only where it is exactly what lib/values.ts writes: strings
  verbatim, nothing for a missing key or a type it does not show, and hashes and lists whose
  fields, items and values are printable ASCII without '"' or '\' (JSON.stringify copies such
  text as it is) and whose field names are not all digits (JSON.stringify puts those first).
  Every other key is returned as read, for the worker to format and append (lib/sink.ts).

  The keys are of many slots, served by the node of the stream; only the stream and its index
  hashes are declared (see lua/read-values-1.lua). Every key is read before anything is
  written, so a call refused because a key is not served here (a slot moved) has written
  nothing, and the worker makes those tickets the usual way.

  Input:
    KEYS[1]   the sink stream (shard)
    KEYS[2..] index hashes (one per partition; all in the stream's slot)
    ARGV[1]   MAXLEN ~ of the stream; 0: never trimmed
    ARGV[2]   the worker making the tickets
    ARGV[3]   createdAt of every ticket (epoch ms)
    ARGV[4..] 8 per ticket: position of its index hash in KEYS, key, seq ('ms-n'), id, event,
              partition, slot, dirtyAt

  Output:
    {appended, then 4 per ticket left to the worker: its number (1-based, in ARGV order), type,
    digest, value as lua/read-values-1.lua returns it (absent for none)}
]]
--- @include "stream-id"
--- @include "record-ticket"
--- @include "read-value"
--- @include "value-digest"

local function plain(s)
  return not string.find(s, '[%c"\\\128-\255]')
end

local shownByWorker = {hash = true, list = true, set = true, zset = true, stream = true}

-- The ticket's value as lib/values.ts writes it; false when the worker must format it.
local function shown(kind, value)
  if kind == 'string' then return value end
  if kind == 'hash' then
    local parts = {}
    for i = 1, #value, 2 do
      local field, v = value[i], value[i + 1]
      if not plain(field) or not plain(v) or string.find(field, '^%d+$') then return false end
      parts[#parts + 1] = '"' .. field .. '":"' .. v .. '"'
    end
    return '{' .. table.concat(parts, ',') .. '}'
  end
  if kind == 'list' then
    local parts = {}
    for i = 1, #value do
      if not plain(value[i]) then return false end
      parts[#parts + 1] = '"' .. value[i] .. '"'
    end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  if shownByWorker[kind] then return false end
  return nil
end

local stream = KEYS[1]
local maxLen = tonumber(ARGV[1])
local worker, createdAt = ARGV[2], ARGV[3]

local reads = {}
for i = 4, #ARGV, 8 do
  local kind, value = readValue(ARGV[i + 1])
  reads[#reads + 1] = {kind, value}
end

local out, appended, n = {0}, 0, 0
for i = 4, #ARGV, 8 do
  n = n + 1
  local kind, value = reads[n][1], reads[n][2]
  local digest = valueDigest(kind, value)
  local text = shown(kind, value)
  if text == false then
    out[#out + 1] = n
    out[#out + 1] = kind
    out[#out + 1] = digest
    out[#out + 1] = value or false
  else
    local key, seq = ARGV[i + 1], ARGV[i + 2]
    local entry = {'id', ARGV[i + 3], 'key', key, 'event', ARGV[i + 4], 'type', kind}
    if text ~= nil then
      entry[9] = 'value'
      entry[10] = text
    end
    local m = #entry
    entry[m + 1], entry[m + 2] = 'seq', seq
    entry[m + 3], entry[m + 4] = 'partition', ARGV[i + 5]
    entry[m + 5], entry[m + 6] = 'slot', ARGV[i + 6]
    entry[m + 7], entry[m + 8] = 'worker', worker
    entry[m + 9], entry[m + 10] = 'dirtyAt', ARGV[i + 7]
    entry[m + 11], entry[m + 12] = 'createdAt', createdAt
    if maxLen > 0 then
      redis.call('XADD', stream, 'MAXLEN', '~', maxLen, '*', unpack(entry))
    else
      redis.call('XADD', stream, '*', unpack(entry))
    end
    recordTicket(KEYS[tonumber(ARGV[i])], key, seq, digest)
    appended = appended + 1
  end
end
out[1] = appended
return out
