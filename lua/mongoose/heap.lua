-- mongoose.heap: a binary min-heap of objects by obj.due (equal dues: first
-- in, first out), each object knowing its place (obj.hpos) so that it can
-- be removed at once. The manager's timers (mongoose.timer) and its
-- scheduler's deadlines (mongoose.coro) are one each; an object is in at
-- most one heap at a time (obj.hheap: adding it to another takes it out).
local floor, setmetatable = math.floor, setmetatable

local Heap = {}
Heap.__index = Heap

local _M = { Heap = Heap }

--- A new empty heap; methods (optional) extends Heap for it.
function _M.new(methods, fields)
  local h = fields or {}
  h.n, h.seq = 0, 0
  return setmetatable(h, methods or Heap)
end

--- A method table for heaps that extends Heap.
function _M.extend(methods)
  methods.__index = methods
  return setmetatable(methods, { __index = Heap })
end

local function before(a, b)
  local da, db = a.due, b.due
  return da < db or (da == db and a.hseq < b.hseq)
end

local function swap(h, i, j)
  local a, b = h[i], h[j]
  h[i], h[j] = b, a
  a.hpos, b.hpos = j, i
end

local function up(h, i)
  while i > 1 do
    local p = floor(i / 2)
    if not before(h[i], h[p]) then
      break
    end
    swap(h, i, p)
    i = p
  end
end

local function down(h, i)
  local n = h.n
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and before(h[l], h[m]) then m = l end
    if r <= n and before(h[r], h[m]) then m = r end
    if m == i then break end
    swap(h, i, m)
    i = m
  end
end

local remove

--- Puts obj in the heap at time due (moving it if it is there already,
-- taking it out of another heap it is in: obj.hheap).
function Heap:add(obj, due)
  if obj.hpos then
    remove(obj.hheap or self, obj)
  end
  obj.hheap = self
  local n, seq = self.n + 1, self.seq + 1
  self.n, self.seq = n, seq
  self[n] = obj
  obj.due, obj.hseq, obj.hpos = due, seq, n
  up(self, n)
end

--- Takes obj out of the heap (nothing if it is not in it).
function remove(self, obj)
  local i = obj.hpos
  if not i or self[i] ~= obj then
    return
  end
  obj.hpos, obj.hheap = nil, nil
  local n = self.n
  if i ~= n then
    local last = self[n]
    self[i] = last
    last.hpos = i
  end
  self[n] = nil
  self.n = n - 1
  if i < n then
    down(self, i)
    up(self, i)
  end
end

Heap.remove = remove

--- Milliseconds from now until the first object is due (0 if overdue),
-- or nil when the heap is empty.
function Heap:next_due(now)
  if self.n == 0 then
    return nil
  end
  local d = self[1].due - now
  return d > 0 and d or 0
end

return _M
