-- mongoose.thread: light threads (tasks started by the program) and
-- semaphores between them.
--
--   local t = thread.spawn(mgr, function(a) mongoose.sleep(10); return a * 2 end, 21)
--   local ok, v = thread.wait(t)          -- true, 42
--
-- spawn runs the function at once, until its first wait, and returns a
-- thread; wait(t1, t2, ...) waits for the first of them to end; kill
-- stops one for good. A semaphore counts resources: wait() takes one,
-- waiting up to a timeout, post() gives some back.
local core = require("mongoose.core")
local coro = require("mongoose.coro")

local type, error, select, unpack = type, error, select, unpack
local setmetatable = setmetatable

local _M = {}

local Thread = core.class("mongoose.Thread")
_M.Thread = Thread

local function pack(...)
  return { n = select("#", ...), ... }
end

-- The finish function of a thread's task.
-- The tasks waiting for thread t (thread.wait) go on with its end.
local function wake_joiners(t)
  local joiners = t.joiners
  if joiners then
    t.joiners = nil
    for i = 1, #joiners do
      coro.wake_later(joiners[i], _M, t)
    end
  end
end

local function thread_done(t, task, ok, ...)
  t.done, t.ok = true, ok
  t.results = pack(...)
  t.task = nil
  if not ok then
    task.mgr:log_failure("thread", (...))
  end
  wake_joiners(t)
end

local function entry(t)
  local args = t.args
  t.args = nil
  return t.fn(unpack(args, 1, args.n))
end

--- Starts fn(...) in a new task of mgr (default: the running task's
-- manager); it runs until its first wait before spawn returns.
function _M.spawn(mgr, fn, ...)
  if type(fn) ~= "function" then
    error("fn must be a function", 2)
  end
  mgr = mgr or coro.current_manager()
  if mgr == nil or mgr.closed then
    error("no open manager to run the thread in", 2)
  end
  local t = setmetatable({ mgr = mgr, fn = fn, args = pack(...), done = false, task = nil },
                         Thread)
  local task = coro.run(mgr, thread_done, t, entry, t)
  if not t.done then
    t.task = task
  end
  return t
end

--- True while the thread has not ended.
function Thread:alive()
  return not self.done and self.task ~= nil
end

function _M.abort_wait(_, task, why)
  return nil, why
end

--- Waits (in a task) for the first of the threads to end. Returns true and
-- its results, or false and its error (also when it was killed).
function _M.wait(...)
  local n = select("#", ...)
  if n == 0 then
    error("no thread to wait for", 2)
  end
  for i = 1, n do
    local t = select(i, ...)
    if getmetatable(t) ~= Thread then
      error("argument " .. i .. " is not a thread", 2)
    end
    if t.done then
      if t.waited then
        return nil, "already waited or killed"
      end
      t.waited = true
      return t.ok, unpack(t.results, 1, t.results.n)
    end
  end
  local task = coro.running()
  if task == nil then
    local list = pack(...)
    return coro.call_blocking((...).mgr, 2, function()
      return _M.wait(unpack(list, 1, list.n))
    end)
  end
  for i = 1, n do
    local t = select(i, ...)
    t.joiners = t.joiners or {}
    t.joiners[#t.joiners + 1] = task
  end
  local t, err = coro.wait(task, _M, nil)
  for i = 1, n do -- no longer waiting for the others
    local other = select(i, ...)
    local joiners = other.joiners
    if joiners then
      for j = #joiners, 1, -1 do
        if joiners[j] == task then
          table.remove(joiners, j)
        end
      end
    end
  end
  if not t then
    return nil, err
  end
  t.waited = true
  return t.ok, unpack(t.results, 1, t.results.n)
end

--- Stops a thread that has not ended: it never runs again. Returns true,
-- or nil and why not.
function _M.kill(t)
  if getmetatable(t) ~= Thread then
    error("argument is not a thread", 2)
  end
  if t.done then
    return nil, "already terminated"
  end
  local task = t.task
  if task == nil or not coro.kill(task) then
    return nil, "not suspended"
  end
  t.task = nil
  t.done, t.ok, t.waited = true, false, true
  t.results = { n = 1, "killed" }
  wake_joiners(t)
  return true
end

---------------------------------------------------------------------------
-- Semaphores
---------------------------------------------------------------------------

local Semaphore = core.class("mongoose.Semaphore")
_M.Semaphore = Semaphore

--- A semaphore with n resources (default 0).
function _M.semaphore(n)
  n = n or 0
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("n must be a non-negative integer", 2)
  end
  return setmetatable({ n = n, waiters = {}, wh = 1, wt = 0 }, Semaphore)
end

--- Gives back n resources (default 1), waking as many waiting tasks.
function Semaphore:post(n)
  n = n or 1
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("n must be a positive integer", 2)
  end
  local w = self.waiters
  while n > 0 and self.wh <= self.wt do
    local task = w[self.wh]
    w[self.wh] = nil
    self.wh = self.wh + 1
    if task and task.waiting == self then
      coro.wake_later(task, self, true)
      n = n - 1
    end
  end
  self.n = self.n + n
  return true
end

--- Takes a resource, waiting up to timeout_ms (0: not at all) for one.
-- Returns true, or nil and "timeout" (or "closed").
function Semaphore:wait(timeout_ms)
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms < 0) then
    error("timeout must be a non-negative number", 2)
  end
  if self.n > 0 then
    self.n = self.n - 1
    return true
  end
  if timeout_ms == 0 then
    return nil, "timeout"
  end
  local task = coro.running()
  if task == nil then
    return coro.call_blocking(coro.current_manager(), 2, Semaphore.wait, self, timeout_ms)
  end
  local wt = self.wt + 1
  self.wt = wt
  self.waiters[wt] = task
  return coro.wait(task, self, timeout_ms)
end

function Semaphore:abort_wait(task, why)
  local w = self.waiters
  for i = self.wh, self.wt do
    if w[i] == task then
      w[i] = false -- skipped by post
    end
  end
  return nil, why
end

--- Resources left, minus the tasks waiting for one.
function Semaphore:count()
  local waiting = 0
  for i = self.wh, self.wt do
    if self.waiters[i] then
      waiting = waiting + 1
    end
  end
  return self.n - waiting
end

return _M
