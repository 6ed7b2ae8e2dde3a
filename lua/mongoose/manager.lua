-- mongoose.manager: the event manager of the high-level API. Owns a C
-- manager, drains its event queue after every poll and routes each event to
-- the Lua object that owns the connection (a listener or a client), runs
-- timers, and stops gracefully.
local ffi = require("ffi")
local core = require("mongoose.core")
local timer = require("mongoose.timer")
local coro = require("mongoose.coro")

local C, EV, tonumber, xpcall = core.C, core.EV, tonumber, xpcall
local traceback, setmetatable, type, error = debug.traceback, setmetatable, type, error
local ffi_string, C_poll, C_events = ffi.string, C.mgffi_poll, C.mgffi_events
local C_millis, coro_run, coro_current = C.mgffi_millis, coro.run, coro.current

-- The longest wait of one C poll: Mongoose takes an int (ms); about 24.8 days.
local MAX_POLL_MS = 2147483647

local EV_CLOSE = EV.CLOSE

local Manager = {}
Manager.__index = Manager

local _M = { Manager = Manager }

local function default_log(level, msg)
  io.stderr:write("[mongoose] ", level, ": ", msg, "\n")
  io.stderr:flush()
end

-- The finish function of a callback's task: logs its error, if any.
local function log_done(what, task, ok, err)
  if not ok then
    task.mgr:log_failure(what, err)
  end
end

local LOG_RANK = { error = 1, warn = 2, info = 3, debug = 4 }

--- Creates a manager.
-- opts.log: function(level, message) receiving "error", "warn", "info",
--   "debug" messages (default: stderr); opts.log_level: the most verbose
--   level passed on (default "warn"); opts.mongoose_log_level: Mongoose's own
--   log level, printed to stderr, for the whole process (default "none":
--   its errors reach Lua as events anyway).
function _M.new(opts)
  opts = core.opt_table(opts, 2)
  local log_level = opts.log_level or "warn"
  if not LOG_RANK[log_level] then
    error("unknown log_level: " .. tostring(log_level), 2)
  end
  if opts.mongoose_log_level ~= nil then
    core.set_log_level(opts.mongoose_log_level) -- process-wide, like Mongoose's
  end
  local cm, err = core.new_manager()
  if not cm then
    return nil, err
  end
  -- Many connections need many descriptors: the soft limit goes up to the
  -- hard one unless opts.raise_fd_limit is false.
  if opts.raise_fd_limit ~= false then
    core.fd_limit(true)
  end
  if opts.max_queue_bytes ~= nil then
    if type(opts.max_queue_bytes) ~= "number" or opts.max_queue_bytes < 1 then
      error("max_queue_bytes must be a positive number", 2)
    end
    C.mgffi_set_max_queue_bytes(cm, opts.max_queue_bytes)
  end
  local self = setmetatable({
    cm = cm,
    owners = {},          -- conn or listener id -> Lua object with on_event
    listeners = {},       -- listener id -> listener, kept after it closes so
                          -- that connections it accepted are served to the end
    timers = timer.new_heap(),
    poll_seq = 0,         -- number of C polls so far
    dispatching = false,
    stopping = false,
    closed = false,
    log_fn = opts.log or default_log,
    log_rank = LOG_RANK[log_level],
    id_out = ffi.new("uint64_t[1]"),
  }, Manager)
  self.sched = coro.new_scheduler(self)
  self.fire_timer = function(t)
    coro_run(self, log_done, "timer", t.fn, t)
  end
  coro.register_manager(self)
  return self
end

function Manager:log(level, msg)
  if (LOG_RANK[level] or 1) <= self.log_rank then
    self.log_fn(level, msg)
  end
end

-- Logs "<what> failed: <err>"; an error value whose __tostring raises
-- is logged as such rather than raising again.
function Manager:log_failure(what, err)
  self:log("error", what .. " failed: " .. core.error_text(err))
end

-- Calls fn(a, b, c, d) in a task (see mongoose.coro): it may wait; an
-- error it raises is logged as "<what> failed: ..." with its traceback.
-- Returns the task while fn waits, nil once it has returned.
function Manager:protected_call(what, fn, a, b, c, d)
  return coro_run(self, log_done, what, fn, a, b, c, d)
end

--- Calls fn(a, b, c), owner's handler of the event being dispatched (a
-- WebSocket message, TCP bytes, a datagram), as protected_call does, but
-- directly when owner is the event's owner and calls it from the
-- dispatcher (see route), so that the JIT compiles through it as through
-- an HTTP handler (a coroutine resume per call cost about twice the CPU
-- per echoed message): an error it raises ends the dispatcher and is
-- logged as "<what> failed: ..." by dispatch; a wait keeps the
-- dispatcher. From anywhere else (a handler closing another connection,
-- say), it is protected_call.
function Manager:event_call(owner, what, fn, a, b, c)
  if self.dispatch_direct and self.dispatch_owner == owner then
    self.dispatch_direct, self.dispatch_what = false, what
    fn(a, b, c)
    self.dispatch_direct, self.dispatch_what = true, nil
    return nil
  end
  return coro_run(self, log_done, what, fn, a, b, c)
end

function Manager:check_open(level)
  if self.closed then
    error("manager is closed", (level or 1) + 1)
  end
end

-- The text of the last C failure on this manager.
function Manager:last_error()
  if self.cm == nil then
    return "manager is closed"
  end
  return ffi_string(C.mgffi_last_error(self.cm))
end

-- Registers the Lua object that receives the events of connection id.
function Manager:own(id, obj)
  self.owners[id] = obj
end

function Manager:disown(id)
  self.owners[id] = nil
end

--- Forgets connection id and closes it (immediately: at once, else once
-- its queued data is sent); only forgets it once the manager is closed.
function Manager:drop(id, immediately)
  self.owners[id] = nil
  if not self.closed then
    C.mgffi_close(self.cm, id, immediately and 1 or 0)
  end
end

-- Raises at level unless v is a number of milliseconds (not NaN).
-- Returns it within 0..MAX_POLL_MS: a negative wait is no wait (a deadline
-- just passed), a longer one is cut (an int in C, or it would wrap).
local function check_ms(v, name, level)
  if type(v) ~= "number" or v ~= v then -- NaN too
    error(name .. " must be a number of milliseconds", level + 1)
  end
  if v < 0 then
    return 0
  elseif v > MAX_POLL_MS then
    return MAX_POLL_MS
  end
  return v
end

local function run_timers(self, now)
  self.timers:run_due(now, self.fire_timer)
end

--- Milliseconds until the next timer or task deadline is due (0: now),
-- or nil when nothing is scheduled.
function Manager:next_due(now)
  local due = self.timers:next_due(now)
  local sd = self.sched:next_due(now)
  if sd and (due == nil or sd < due) then
    return sd
  end
  return due
end

--- Runs one poll: waits up to timeout_ms (default 0; a number, negative
-- meaning 0, cut to MAX_POLL_MS) for network events or the next timer, then
-- dispatches events to their handlers and runs the timers that are due.
-- Returns the number of events handled.
function Manager:poll(timeout_ms)
  self:check_open(2)
  if self.dispatching then
    error("poll cannot be called from inside an event handler", 2)
  end
  if timeout_ms == nil then
    timeout_ms = 0
  else
    timeout_ms = check_ms(timeout_ms, "timeout_ms", 2)
  end
  local now = tonumber(C_millis())
  local due = self:next_due(now)
  if due and due < timeout_ms then
    timeout_ms = due
  end
  local n = C_poll(self.cm, timeout_ms)
  self.poll_seq = self.poll_seq + 1
  if n < 0 then
    self:log("error", "poll failed: " .. self:last_error())
    return 0
  end
  if n > 0 then
    self:dispatch(n)
    if self.close_requested then
      self:close()
      return n
    end
  end
  if self.timers.n > 0 then
    self.dispatching = true
    run_timers(self, tonumber(C_millis()))
    self.dispatching = false
    if self.close_requested then
      self:close()
      return n
    end
  end
  local sched = self.sched
  if sched.n > 0 or sched.rn > 0 then
    -- Waits whose deadline passed, tasks made ready (sleep(0), ...).
    self.dispatching = true
    local ok, err = xpcall(sched.run, traceback, sched, tonumber(C_millis()))
    self.dispatching = false
    if not ok then
      self:log_failure("scheduler", err)
    end
    if self.close_requested then
      self:close()
    end
  end
  return n
end

local function owner_of(self, ev, id)
  local owner = self.owners[id]
  if owner == nil then
    local lid = tonumber(ev.listener_id)
    if lid ~= 0 then
      owner = self.owners[lid] or self.listeners[lid]
    end
  end
  return owner
end

-- Routes events first..n-1 to their owners, inside a dispatcher task (see
-- dispatch). An HTTP handler is called directly from here, so that the
-- JIT compiles the whole request path as one trace; a handler that waits
-- suspends this dispatcher, which then stays with it ("detached"): once
-- the handler is done, it returns here and must stop at once.
local function route(self, events, first, n)
  local me = coro_current() -- the dispatcher task: route is its function
  local owners = self.owners
  for i = first, n - 1 do
    self.dispatch_index = i
    local ev = events[i]
    local id = tonumber(ev.conn_id)
    local owner = owners[id]
    if owner == nil then
      owner = owner_of(self, ev, id)
    end
    if owner ~= nil then
      self.dispatch_owner, self.dispatch_what, self.dispatch_direct = owner, nil, true
      owner:on_event(ev, id)
      self.dispatch_direct = false
      if me.detached then
        return n -- this event's handler waited: the others went on elsewhere
      end
    end
    if ev.type == EV_CLOSE and owners[id] ~= nil then
      owners[id] = nil
    end
    if self.closed or self.close_requested then
      return n -- the manager is closing: the rest of the array is moot
    end
  end
  return n
end

-- An error escaped an event handler: its owner recovers (an HTTP listener
-- answers 500; ctx: the request of a handler that had waited) and logs;
-- a handler called through event_call is logged under its name (what).
local function report(self, owner, err, ctx, what)
  if what ~= nil then
    self:log_failure(what, err)
  elseif owner ~= nil and owner.on_event_error then
    local ok, err2 = pcall(owner.on_event_error, owner, err, ctx)
    if not ok then
      self:log_failure("error handler", err2)
    end
  else
    self:log_failure("event handler", err)
  end
end

-- The finish function of a dispatcher task.
local function dispatch_done(self, task, ok, err)
  local detached = task.detached
  if detached then
    local owner, ctx, what = task.detached_owner, task.detached_ctx, task.detached_what
    task.detached, task.detached_owner, task.detached_ctx, task.detached_what = nil, nil, nil, nil
    if not ok then
      report(self, owner, err, ctx, what)
    end
  elseif not ok then
    self.dispatch_failed, self.dispatch_error = true, err -- dispatch() reports it
  end
end

-- Dispatches the poll's n events: route runs in a dispatcher task (one
-- resume per poll). When it stops at an error, the event's owner recovers
-- and the next event goes on in a new dispatcher; when a handler waits,
-- the dispatcher is left to it (its owner's detach(task) gives the
-- context an error after the wait is reported with) and a new one goes on.
function Manager:dispatch(n)
  local events = C_events(self.cm)
  self.dispatching = true
  local first = 0
  while first < n do
    self.dispatch_failed = false
    local task = coro_run(self, dispatch_done, self, route, self, events, first, n)
    local failed = self.dispatch_index
    if task then
      task.detached = true
      local owner = self.dispatch_owner
      task.detached_owner, task.detached_what = owner, self.dispatch_what
      if owner and owner.detach then
        task.detached_ctx = owner:detach(task)
      end
    else
      if not self.dispatch_failed then
        break
      end
      local err = self.dispatch_error -- (nil for error(nil))
      self.dispatch_failed, self.dispatch_error = false, nil
      local ev = events[failed]
      report(self, owner_of(self, ev, tonumber(ev.conn_id)), err, nil, self.dispatch_what)
      if ev.type == EV_CLOSE then
        self.owners[tonumber(ev.conn_id)] = nil
      end
    end
    if self.closed or self.close_requested then
      break
    end
    first = failed + 1
  end
  self.dispatch_owner, self.dispatch_what, self.dispatch_direct = nil, nil, false
  self.dispatching = false
end

-- A new timer of self: fn(timer) after ms, then every ms if repeating.
local function add_timer(self, ms, fn, repeating)
  local ok = type(ms) == "number" and ms == ms and (ms > 0 or (ms == 0 and not repeating)) -- NaN not
  if not ok then
    error(repeating and "interval_ms must be a positive number" or "delay_ms must be a non-negative number", 3)
  end
  if type(fn) ~= "function" then
    error("fn must be a function", 3)
  end
  local t = self.timers:add_timer(tonumber(C_millis()), ms, repeating and ms or nil, fn)
  return t
end

--- Calls fn(timer) once after delay_ms. Returns the timer (timer:cancel()).
function Manager:set_timeout(delay_ms, fn)
  local t = add_timer(self, delay_ms, fn, false)
  return t
end

--- Calls fn(timer) every interval_ms until timer:cancel().
function Manager:set_interval(interval_ms, fn)
  local t = add_timer(self, interval_ms, fn, true)
  return t
end

local SIGNALS = { INT = 2, TERM = 15, HUP = 1, QUIT = 3, USR1 = 10, USR2 = 12 }

--- Polls until stop() is called (or, with opts.signals = {"INT", "TERM"},
-- until one of those signals arrives), then shuts down: listeners close,
-- queued responses are flushed for up to opts.shutdown_timeout ms (default
-- 2000) and the manager is freed.
function Manager:run(opts)
  self:check_open(2)
  opts = core.opt_table(opts, 2)
  local poll_ms = check_ms(opts.poll_ms or 1000, "poll_ms", 2)
  local shutdown_timeout = opts.shutdown_timeout or 2000
  if type(shutdown_timeout) ~= "number" or shutdown_timeout ~= shutdown_timeout then
    error("shutdown_timeout must be a number of milliseconds", 2)
  end
  if opts.signals then
    for _, name in ipairs(opts.signals) do
      local signo = SIGNALS[name] or tonumber(name)
      if not signo or C.mgffi_signal_watch(signo) ~= 0 then
        error("unknown signal: " .. tostring(name), 2)
      end
    end
  end
  self.stopping = false
  while not self.stopping do
    local ok, err = pcall(self.poll, self, poll_ms)
    if not ok then
      -- An error outside every handler (handlers have their own guard), such
      -- as the Lua heap running out while events are routed: logged, and
      -- the loop goes on serving.
      if self.closed then
        break
      end
      self.dispatching = false
      collectgarbage()
      pcall(self.log_failure, self, "poll", err)
    end
    if opts.signals then
      local signo = C.mgffi_signal_take()
      if signo ~= 0 then
        self:log("info", "signal " .. signo .. " received, stopping")
        self.stopping = true
      end
    end
  end
  self:shutdown(shutdown_timeout)
  return true
end

--- Asks run() to return after the current poll. Callable from handlers.
function Manager:stop()
  self.stopping = true
end

-- Closes listeners, lets queued data go out (bounded), then frees.
function Manager:shutdown(timeout_ms)
  if self.closed then
    return
  end
  for _, owner in pairs(self.owners) do
    if owner.is_listener then
      owner:close()
    end
  end
  local deadline = tonumber(C_millis()) + (timeout_ms or 0)
  local info = ffi.new("mgffi_conn_info")
  local ids = ffi.new("uint64_t[256]")
  while tonumber(C_millis()) < deadline do
    local count = tonumber(C.mgffi_connection_ids(self.cm, ids, 256))
    local busy = false
    for i = 0, math.min(count, 256) - 1 do
      if C.mgffi_get_conn_info(self.cm, ids[i], info) == 0 and info.send_queued > 0 then
        busy = true
        break
      end
    end
    if not busy then
      break
    end
    self:poll(10)
  end
  self:close()
end

--- Frees the manager and every connection now (from inside a handler or
-- timer: at the end of the current poll's dispatch). Idempotent.
function Manager:close()
  if self.closed then
    return
  end
  if self.dispatching then
    -- The event array being walked belongs to the C manager.
    self.close_requested = true
    self.stopping = true
    return
  end
  if self.luv then
    require("mongoose.luv").detach(self)
  end
  self.closed = true
  core.free_manager(self.cm)
  self.cm = nil -- every C call now fails cleanly with MGFFI_ERR_ARG
  self.owners = {}
  self.listeners = {}
  self.timers = timer.new_heap()
  self.sched = coro.new_scheduler(self) -- suspended tasks are dropped
end

--- Number of live connections, listeners included.
function Manager:connection_count()
  self:check_open(2)
  return tonumber(C.mgffi_connection_count(self.cm))
end

-- Starts a listener ("listen"), a client connection ("connect") or a
-- WebSocket client ("ws"; ws_headers: the extra header block of its
-- handshake, and mongoose.websocket's declarations must be loaded) in C,
-- with the TLS settings the URL asks for (opts_tls, see mongoose.tls; the
-- files are read before any socket exists). Returns the id or nil, err.
function Manager:open_connection(kind, url, protocol, opts_tls, ws_headers)
  -- Mongoose would silently take port 0 for "abc" and wrap 70000 onto
  -- another port: check the port part of the URL first.
  local authority = url:match("^%a[%w+.-]*://([^/?#]*)")
  if authority then
    local port = authority:match("^%[.*%]:(.*)$")
      or (not authority:find("^%[") and authority:match("^[^:]*:(.*)$"))
    if port and (not port:match("^%d+$") or tonumber(port) > 65535) then
      return nil, "invalid port '" .. port .. "' in " .. url
    end
  end
  local tls = require("mongoose.tls")
  local material, err = tls.prepare(url, opts_tls, kind ~= "listen")
  if material == nil then
    return nil, err
  end
  local rc
  if kind == "ws" then
    rc = C.mgffi_ws_connect(self.cm, url, #url, ws_headers, #ws_headers, self.id_out)
  else
    local fn = kind == "listen" and C.mgffi_listen or C.mgffi_connect
    rc = fn(self.cm, url, #url, protocol, self.id_out)
  end
  if rc ~= 0 then
    return nil, self:last_error()
  end
  local id = tonumber(self.id_out[0])
  local ok
  ok, err = tls.install(self, id, material)
  if not ok then
    return nil, err
  end
  return id
end

return _M
