-- The coverage mark a renewal leaves: up to what the owner heard, never later than now, and
-- never below 0. Acquire and take-over read a missing mark as -1, "never covered", which the
-- next owner answers by adopting what Redis holds without tickets; an owner that heard nothing
-- (a listener not yet subscribed, or stopped) sends 0 plus its clock offset, which may be
-- negative, and must still mean "covered up to the epoch": repair everything.
local function coverageMark(now, heardUpTo)
  return math.max(0, math.min(now, heardUpTo))
end
