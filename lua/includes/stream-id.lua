-- Whether stream id a ('ms-n') is after b; b may be followed by more text (an index entry).
local function streamIdAfter(a, b)
  local am, an = string.match(a, '^(%d+)-(%d+)')
  local bm, bn = string.match(b, '^(%d+)-(%d+)')
  am, an, bm, bn = tonumber(am), tonumber(an), tonumber(bm), tonumber(bn)
  return am > bm or (am == bm and an > bn)
end
