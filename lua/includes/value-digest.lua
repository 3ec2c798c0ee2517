-- Digest of a value as a ticket shows it: 16 hex digits of SHA1 over the type and the
-- content, length-prefixed, hash fields and set members sorted (their reply order depends
-- on the encoding, which a replica or a reload may change). '' for a missing key.
local function valueDigest(kind, value)
  if kind == 'none' then return '' end
  local parts = {}
  local function put(s) parts[#parts + 1] = #s .. ':' .. s end
  if kind == 'string' then
    put(value)
  elseif kind == 'hash' then
    local fields = {}
    local byField = {}
    for i = 1, #value, 2 do
      fields[#fields + 1] = value[i]
      byField[value[i]] = value[i + 1]
    end
    table.sort(fields)
    for _, f in ipairs(fields) do put(f); put(byField[f]) end
  elseif kind == 'set' then
    table.sort(value)
    for _, m in ipairs(value) do put(m) end
  elseif kind == 'list' or kind == 'zset' then
    for _, m in ipairs(value) do put(m) end
  elseif kind == 'stream' then
    for _, entry in ipairs(value) do
      put(entry[1])
      put(tostring(#entry[2]))
      for _, f in ipairs(entry[2]) do put(f) end
    end
  end
  return string.sub(redis.sha1hex(kind .. '\n' .. table.concat(parts)), 1, 16)
end
