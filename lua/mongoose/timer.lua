-- mongoose.timer: one-shot and repeating timers of a manager, in a heap
-- (mongoose.heap) in Lua. The manager asks next_due() how long it may
-- sleep in poll and calls run_due() after each poll: no C callback is
-- involved.
local heap = require("mongoose.heap")
local setmetatable = setmetatable

local Timer = {}
Timer.__index = Timer

-- Stops the timer; it will not fire again. Safe to call more than once.
function Timer:cancel()
  self.cancelled = true
  self.timers:remove(self)
end

local Timers = heap.extend({})

local _M = {}

function _M.new_heap()
  return heap.new(Timers)
end

-- Adds a timer firing after delay_ms (and then every interval_ms if given).
function Timers:add_timer(now, delay_ms, interval_ms, fn)
  local t = setmetatable({ interval = interval_ms, fn = fn, cancelled = false, timers = self }, Timer)
  self:add(t, now + delay_ms)
  return t
end

-- Calls fire(timer) for every timer due at now; repeating ones are rescheduled.
function Timers:run_due(now, fire)
  -- Timers added while firing wait for the next round, even with delay 0.
  local limit = self.seq
  while self.n > 0 do
    local t = self[1]
    if t.due > now or t.hseq > limit then
      break
    end
    self:remove(t)
    if t.interval then
      self:add(t, now + t.interval)
    else
      t.cancelled = true
    end
    fire(t)
  end
end

return _M
