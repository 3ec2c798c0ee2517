--[[
  Claim the layout of the default sink for a prefix: the first worker lists its stream names,
  every later one gets the list back and refuses to start on a different one (its index and
  its tickets would go elsewhere than the others').

  Input:
    KEYS[1]   the list of the sink's stream names
    ARGV      the stream names this worker would write, in shard order

  Output:
    the stream names of the prefix's sink, in shard order
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('RPUSH', KEYS[1], unpack(ARGV))
end
return redis.call('LRANGE', KEYS[1], 0, -1)
