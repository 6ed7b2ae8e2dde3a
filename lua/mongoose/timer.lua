-- mongoose.timer: one-shot and repeating timers kept in a binary heap in
-- Lua. The manager asks next_due() how long it may sleep in poll and calls
-- run_due() after each poll: no C callback is involved.
local floor = math.floor

local Timer = {}
Timer.__index = Timer

-- Stops the timer; it will not fire again. Safe to call more than once.
function Timer:cancel()
  self.cancelled = true
end

local Heap = {}
Heap.__index = Heap

local _M = {}

function _M.new_heap()
  return setmetatable({ n = 0, seq = 0 }, Heap)
end

local function less(a, b)
  if a.due == b.due then
    return a.seq < b.seq
  end
  return a.due < b.due
end

function Heap:push(t)
  local n = self.n + 1
  self.n = n
  self[n] = t
  while n > 1 do
    local parent = floor(n / 2)
    if less(self[n], self[parent]) then
      self[n], self[parent] = self[parent], self[n]
      n = parent
    else
      break
    end
  end
end

function Heap:pop()
  local n = self.n
  if n == 0 then
    return nil
  end
  local top = self[1]
  self[1] = self[n]
  self[n] = nil
  n = n - 1
  self.n = n
  local i = 1
  while true do
    local l, r, smallest = 2 * i, 2 * i + 1, i
    if l <= n and less(self[l], self[smallest]) then smallest = l end
    if r <= n and less(self[r], self[smallest]) then smallest = r end
    if smallest == i then break end
    self[i], self[smallest] = self[smallest], self[i]
    i = smallest
  end
  return top
end

-- Adds a timer firing after delay_ms (and then every interval_ms if given).
function Heap:add(now, delay_ms, interval_ms, fn)
  self.seq = self.seq + 1
  local t = setmetatable({
    due = now + delay_ms, interval = interval_ms, fn = fn, seq = self.seq,
    cancelled = false,
  }, Timer)
  self:push(t)
  return t
end

-- Milliseconds until the next live timer is due (0 if overdue), or nil.
function Heap:next_due(now)
  while self.n > 0 and self[1].cancelled do
    self:pop()
  end
  if self.n == 0 then
    return nil
  end
  local d = self[1].due - now
  return d > 0 and d or 0
end

-- Calls fire(timer) for every timer due at now; repeating ones are rescheduled.
function Heap:run_due(now, fire)
  -- Timers added while firing wait for the next round, even with delay 0.
  local limit = self.seq
  while self.n > 0 do
    local t = self[1]
    if t.cancelled then
      self:pop()
    elseif t.due > now or t.seq > limit then
      break
    else
      self:pop()
      if t.interval then
        t.due = now + t.interval
        self.seq = self.seq + 1
        t.seq = self.seq
        self:push(t)
      else
        t.cancelled = true
      end
      fire(t)
    end
  end
end

return _M
