-- mongoose.coro: the coroutines that handlers and callbacks run in.
--
-- Every handler, callback and timer of a manager runs in a *task*: a
-- coroutine taken from a pool (and given back when the function returns),
-- so that it may wait (mongoose.sleep, a socket read, an HTTP request)
-- by yielding to the manager, which resumes it when the event it waits for
-- arrives, or when its deadline passes. A function that never waits costs
-- one resume and one yield; nothing is allocated per call in steady state.
--
-- Waits go through wait(obj, timeout_ms): the running task records obj
-- (what it waits on) and yields; wake(task, obj, ...) resumes it with
-- values; on a timeout or a cancellation obj:abort_wait(task, why) undoes
-- the wait (removes a reader, ...) and gives the values the wait returns.
-- Deadlines live in one binary heap per manager (the scheduler) whose
-- entries are the objects themselves (obj.due, obj.hpos), lazily: a wait
-- that ends early leaves its entry for the next one (see Sched:add).
local heap = require("mongoose.heap")
local core = require("mongoose.core")

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_running, pcall, traceback, type = coroutine.running, pcall, debug.traceback, type
local error, tonumber, setmetatable = error, tonumber, setmetatable
local C_millis = core.C.mgffi_millis

local _M = {}

-- What a task's coroutine yields to the code that resumed it.
local DONE = {} -- the function returned (and its finish function ran)
local WAIT = {} -- it waits: wake() or a deadline resumes it

-- A task that keeps waiting after being cancelled is stopped after this
-- many waits that returned "closed" at once (a loop that ignores errors
-- would otherwise spin without ever giving the loop back).
local CANCELLED_WAITS = 100

local YIELD_MSG = "coroutine.yield() called from a handler, callback or timer outside mongoose's "
  .. "waits (mongoose.sleep, sockets, fetch...); the callback was abandoned"
local POOL_MAX = 4096

local Task = core.class("mongoose.Task")
_M.Task = Task

local pool, pool_n = {}, 0
local created = 0 -- coroutines made so far (for stats())
local current = nil -- the task running now; nil in the main program

-- The coroutine body: runs fn, hands its results to finish(ctx, task,
-- true, ...) inside the task, then waits for more work. fn is called
-- directly, not under xpcall, so that the JIT compiles the handler's
-- path through its return (a trace cannot return into a pcall frame): an
-- error ends the coroutine, and the code that resumed it calls finish
-- with false and the traceback (see after()).
local function body(task, finish, ctx, fn, a, b, c, d)
  while true do
    finish(ctx, task, true, fn(a, b, c, d))
    task.mgr = nil
    -- Nothing of this call stays referenced while the task sits in the pool.
    finish, ctx, fn, a, b, c, d = nil, nil, nil, nil, nil, nil, nil -- luacheck: ignore 311
    finish, ctx, fn, a, b, c, d = co_yield(DONE)
  end
end

-- What a task leaves open (its sockets) is closed when it ends.
local function end_owned(task)
  local owned = task.owned
  for i = 1, owned.n do
    local obj = owned[i]
    owned[i] = nil
    local ok, err = pcall(obj.on_task_end, obj, task)
    if not ok and task.mgr then
      task.mgr:log_failure("closing what a task left open", err)
    end
  end
  owned.n = 0
end

--- Ties obj to task: obj:on_task_end(task) is called when the task ends.
function _M.adopt(task, obj)
  local owned = task.owned
  if not owned then
    owned = { n = 0 }
    task.owned = owned
  end
  local n = owned.n + 1
  owned.n = n
  owned[n] = obj
end

-- Hands back task (its function returned) or forgets it (it died).
local function release(task)
  if task.owned and task.owned.n > 0 then
    end_owned(task)
  end
  task.waiting = nil
  task.cancelled = false
  task.cancel_waits = 0
  task.thread = nil
  task.ctx = nil
  if pool_n < POOL_MAX then
    pool_n = pool_n + 1
    pool[pool_n] = task
  end
end

-- The marker of a task in the ready queue (sleep(0), a bare yield).
local READY_MARK = {}
function READY_MARK:abort_wait(task, why)
  return nil, why
end

-- A task that will not run again (its function raised, or it yielded
-- outside mongoose's waits): what it left open is closed and its finish
-- function gets err, in the resumer's context.
local function abandon(task, err)
  task.waiting = nil
  if task.owned and task.owned.n > 0 then
    end_owned(task)
  end
  local done, ferr = pcall(task.finish, task.ctx, task, false, err)
  if not done then
    local mgr = task.mgr
    if mgr then
      mgr:log_failure("task", ferr)
    else
      io.stderr:write("[mongoose] error: task failed: ", core.error_text(ferr), "\n")
    end
  end
  return nil
end

-- What follows a resume: the task finished, waits, raised, or yielded
-- outside mongoose's waits. Returns the task when it is suspended, nil
-- when it is done.
local function after(task, ok, marker)
  if marker == WAIT then
    return task
  elseif marker == DONE then
    release(task)
    return nil
  elseif not ok then
    -- fn raised: the coroutine is dead; the traceback is of where.
    return abandon(task, traceback(task.co, marker))
  end
  -- A bare coroutine.yield() (not a wait): the coroutine stays suspended
  -- there and is dropped.
  return abandon(task, traceback(task.co, YIELD_MSG))
end

local function resume(task, a, b, c, d)
  local prev = current
  current = task
  local ok, marker = co_resume(task.co, a, b, c, d)
  current = prev
  return after(task, ok, marker)
end

--- Runs fn(a, b, c, d) in a task of mgr now, until it returns or first
-- waits; then calls finish(ctx, task, ok, results...) inside the task
-- (ok false: results[1] is the error with its traceback). Returns the
-- task when fn is suspended in a wait, nil when it has returned.
function _M.run(mgr, finish, ctx, fn, a, b, c, d)
  local task
  if pool_n > 0 then
    task = pool[pool_n]
    pool[pool_n] = nil
    pool_n = pool_n - 1
    task.mgr, task.finish, task.ctx = mgr, finish, ctx
    local prev = current
    current = task
    local ok, marker = co_resume(task.co, finish, ctx, fn, a, b, c, d)
    current = prev
    return after(task, ok, marker)
  end
  task = setmetatable({ co = nil, mgr = mgr, gen = 0, waiting = nil, cancelled = false,
                        cancel_waits = 0, due = 0, hseq = 0, hpos = nil, hheap = nil,
                        want_due = nil, thread = nil, owned = nil, handler_deadline = nil,
                        finish = finish, ctx = ctx }, Task)
  task.co = co_create(body)
  created = created + 1
  local prev = current
  current = task
  local ok, marker = co_resume(task.co, task, finish, ctx, fn, a, b, c, d)
  current = prev
  return after(task, ok, marker)
end

--- How many task coroutines were created so far, and how many wait in
-- the pool for reuse.
function _M.stats()
  return { created = created, pooled = pool_n }
end

--- The task running now, or nil (the main program, or a coroutine of the
-- program's own that is not a task).
local function running()
  local task = current
  if task ~= nil and task.co == co_running() then
    return task
  end
  return nil
end
_M.running = running

--- The task being run (or resumed) now, without the check of running():
-- for what only needs the task's manager or to tie an object to it, not
-- for a wait (the running coroutine may be one of the program's own).
function _M.current()
  return current
end

---------------------------------------------------------------------------
-- The scheduler of a manager: deadlines (a heap of objects by obj.due,
-- each knowing its place in obj.hpos) and the tasks ready to resume.
---------------------------------------------------------------------------

local Sched = heap.extend({})

function _M.new_scheduler(mgr)
  return heap.new(Sched, { mgr = mgr, rn = 0, rtask = {}, rgen = {}, rval = {} })
end

-- Sched:add(obj, due) calls obj:on_deadline() at time due (ms of
-- mgffi_millis) unless Sched:remove(obj) is called first (an object has
-- one deadline at a time). Deadlines are lazy, since most waits end
-- early and the next one of the same task is due later: remove only
-- forgets the deadline (obj.want_due), leaving the object's heap entry
-- where it is, and an add that is not earlier than that entry only notes
-- its time; an entry that comes due then goes again at the time wanted
-- (or is dropped). A request then costs no heap operation in steady state,
-- and the heap holds at most one entry per object.
local Heap_add, Heap_remove = heap.Heap.add, heap.Heap.remove

function Sched:add(obj, due)
  local i = obj.hpos
  obj.want_due = due
  if i and obj.hheap == self and self[i] == obj and obj.due <= due then
    return -- its entry comes first; it goes again at due then
  end
  Heap_add(self, obj, due)
end

function Sched:remove(obj)
  obj.want_due = nil
end

--- Queues task to be resumed with val after this poll's events, if it is
-- still in the wait it is in now.
function Sched:ready(task, val)
  local rn = self.rn + 1
  self.rn = rn
  self.rtask[rn], self.rgen[rn], self.rval[rn] = task, task.gen, val
end

--- Milliseconds until something is due (0: now), or nil.
function Sched:next_due(now)
  if self.rn > 0 then
    return 0
  end
  return heap.Heap.next_due(self, now)
end

--- Runs the deadlines due at now, then the tasks that were ready before
-- (those made ready meanwhile wait for the next poll).
function Sched:run(now)
  while self.n > 0 and self[1].due <= now do
    local obj = self[1]
    Heap_remove(self, obj)
    local want = obj.want_due
    if want ~= nil then
      if want > now then
        Heap_add(self, obj, want)
      else
        obj.want_due = nil
        obj:on_deadline(now)
      end
    end
  end
  local rn = self.rn
  if rn == 0 then
    return
  end
  local rtask, rgen, rval = self.rtask, self.rgen, self.rval
  -- Entries made ready from here on go after rn.
  for i = 1, rn do
    local task, gen, val = rtask[i], rgen[i], rval[i]
    rtask[i], rval[i] = nil, nil
    if task.gen == gen and task.waiting then
      task.waiting = nil
      task.gen = gen + 1
      resume(task, val)
    end
  end
  local total = self.rn
  if total > rn then
    for i = rn + 1, total do
      rtask[i - rn], rgen[i - rn], rval[i - rn] = rtask[i], rgen[i], rval[i]
      rtask[i], rval[i] = nil, nil
    end
  end
  self.rn = total - rn
end

---------------------------------------------------------------------------
-- Waiting
---------------------------------------------------------------------------

local function now_ms()
  return tonumber(C_millis())
end
_M.now_ms = now_ms

--- Suspends the running task (which the caller checked with running())
-- until wake(task, obj, ...) or, after timeout_ms (nil or <= 0: none),
-- obj:abort_wait(task, "timeout"); a cancelled task gets
-- obj:abort_wait(task, "closed"). Returns what the waker passed.
function _M.wait(task, obj, timeout_ms)
  if task.cancelled then
    local n = task.cancel_waits + 1
    task.cancel_waits = n
    if n > CANCELLED_WAITS then
      error("this task was cancelled (its client went away or it timed out) and keeps waiting", 3)
    end
    return nil, "closed"
  end
  task.gen = task.gen + 1
  task.waiting = obj
  if timeout_ms and timeout_ms > 0 then
    task.mgr.sched:add(task, now_ms() + timeout_ms)
  end
  return co_yield(WAIT)
end

-- The wait task is in is over (a later wake-up for it is stale), and so
-- is its deadline.
local function end_wait(task)
  task.waiting = nil
  task.gen = task.gen + 1
  if task.hpos then
    task.mgr.sched:remove(task)
  end
end

--- Resumes task with a, b, c if it waits on obj (else does nothing).
function _M.wake(task, obj, a, b, c)
  if task.waiting ~= obj or obj == nil then
    return
  end
  end_wait(task)
  return resume(task, a, b, c)
end

--- Like wake, but resumes after this poll's events (for wake-ups made
-- from inside another task, to keep stacks flat).
function _M.wake_later(task, obj, val)
  if task.waiting ~= obj or obj == nil then
    return
  end
  if task.hpos then
    task.mgr.sched:remove(task)
  end
  task.waiting = READY_MARK
  task.mgr.sched:ready(task, val)
end

-- A task's own deadline: the wait it is in times out.
function Task:on_deadline()
  local obj = self.waiting
  if not obj then
    return
  end
  self.waiting = nil
  self.gen = self.gen + 1
  return resume(self, obj:abort_wait(self, "timeout"))
end

--- Cancels task: the wait it is in (and every later one) returns
-- nil, "closed" at once. Used when a request's client goes away.
function _M.cancel(task)
  if task.cancelled then
    return
  end
  task.cancelled = true
  local obj = task.waiting
  if obj then
    end_wait(task)
    return resume(task, obj:abort_wait(task, "closed"))
  end
end

--- Stops task for good: its wait is undone and it never runs again (its
-- finish function is not called). Returns true if it was suspended.
function _M.kill(task)
  local obj = task.waiting
  if not obj then
    return false
  end
  end_wait(task)
  obj:abort_wait(task, "killed")
  if task.owned and task.owned.n > 0 then
    end_owned(task)
  end
  return true -- the coroutine is dropped, not given back to the pool
end

---------------------------------------------------------------------------
-- Sleeping, and waiting from the main program
---------------------------------------------------------------------------

local SLEEP = {}
function SLEEP:abort_wait(task, why)
  if why == "timeout" then
    return true
  end
  return nil, why
end

local function check_ms(ms, level)
  if type(ms) ~= "number" or ms ~= ms or ms < 0 then
    error("the time must be a non-negative number", level + 1)
  end
end

--- Suspends the running task for ms milliseconds (0: until the other
-- events of this poll have been handled). Returns true, or nil and
-- "closed" when the task was cancelled meanwhile. Outside a task, polls
-- the manager that is running (or, given, mgr) for that long instead.
function _M.sleep(ms, mgr)
  check_ms(ms, 2)
  local task = running()
  if task == nil then
    return _M.block_sleep(ms, mgr, 3)
  end
  if ms == 0 then
    if task.cancelled then
      return _M.wait(task, SLEEP, nil)
    end
    task.gen = task.gen + 1
    task.waiting = READY_MARK
    task.mgr.sched:ready(task, true)
    return co_yield(WAIT)
  end
  return _M.wait(task, SLEEP, ms)
end

-- The managers known to be open, most recent last: the default manager
-- of code that runs outside any task.
local managers = setmetatable({}, { __mode = "k" })
local last_manager = setmetatable({}, { __mode = "v" })

function _M.register_manager(mgr)
  managers[mgr] = true
  last_manager[1] = mgr
end

--- The manager of the running task, or the most recently created one that
-- is still open; nil when there is none.
function _M.current_manager()
  local task = running()
  if task then
    return task.mgr
  end
  local m = last_manager[1]
  if m and not m.closed then
    return m
  end
  return nil
end

local function check_can_block(mgr, level)
  if mgr == nil then
    error("no manager to wait with: create one with mongoose.new_manager()", level + 1)
  end
  if mgr.closed then
    error("manager is closed", level + 1)
  end
  if mgr.dispatching then
    error("cannot wait here: this coroutine is not a mongoose task (waits work in handlers, "
          .. "callbacks, timers and mongoose.spawn, not in coroutines of your own)", level + 1)
  end
end

function _M.block_sleep(ms, mgr, level)
  mgr = mgr or _M.current_manager()
  check_can_block(mgr, level)
  local deadline = now_ms() + ms
  while not mgr.closed do
    local left = deadline - now_ms()
    if left <= 0 then
      break
    end
    mgr:poll(left)
  end
  return true
end

local function blocking_done(box, task, ok, a, b, c, d)
  box.done, box.ok, box[1], box[2], box[3], box[4] = true, ok, a, b, c, d
end

--- From the main program: runs fn(a, b, c, d) in a task of mgr and polls
-- mgr until it returns; returns its results (its error is raised again).
-- level: where the errors about waiting here point.
function _M.call_blocking(mgr, level, fn, a, b, c, d)
  check_can_block(mgr, level + 1)
  local box = { done = false }
  _M.run(mgr, blocking_done, box, fn, a, b, c, d)
  while not box.done do
    if mgr.closed then
      return nil, "manager is closed"
    end
    mgr:poll(1000)
  end
  if not box.ok then
    error(box[1], 0)
  end
  return box[1], box[2], box[3], box[4]
end

return _M
