-- Tests of the manager's timers (set_timeout, set_interval, cancel), of
-- run()/stop() and of run()'s signal handling.
local T = require("testlib")
local ffi = require("ffi")
local mongoose = require("mongoose")
local core = mongoose.core

ffi.cdef [[
int getpid(void);
]]

local millis = core.millis

-- A manager whose log messages are collected in the returned table.
local function new_manager(log_level)
  local logs = {}
  local mgr = assert(mongoose.new_manager({
    log_level = log_level,
    log = function(level, msg)
      logs[#logs + 1] = { level = level, msg = msg }
    end,
  }))
  return mgr, logs
end

-- Polls until cond() or timeout_ms; returns cond().
local function poll_until(mgr, cond, timeout_ms)
  return T.poll_until(mgr, cond, timeout_ms or 3000)
end

local function sleep_polling(mgr, ms)
  local deadline = millis() + ms
  while millis() < deadline do
    mgr:poll(deadline - millis())
  end
end

T.test("set_timeout: timers fire in order of their delays", function()
  local mgr = new_manager()
  local order = {}
  for _, d in ipairs({ 30, 10, 20, 0, 40 }) do
    mgr:set_timeout(d, function()
      order[#order + 1] = d
    end)
  end
  T.ok(poll_until(mgr, function() return #order == 5 end), "all fired")
  T.eq(table.concat(order, ","), "0,10,20,30,40", "order")
  mgr:close()
end)

T.test("set_timeout: equal delays fire in the order they were set", function()
  local mgr = new_manager()
  local order = {}
  for i = 1, 10 do
    mgr:set_timeout(20, function()
      order[#order + 1] = i
    end)
  end
  T.ok(poll_until(mgr, function() return #order == 10 end), "all fired")
  T.eq(table.concat(order, ","), "1,2,3,4,5,6,7,8,9,10", "order")
  mgr:close()
end)

T.test("set_timeout: fires once, not before its delay", function()
  local mgr = new_manager()
  local t0 = millis()
  local fired_at, count = nil, 0
  mgr:set_timeout(100, function()
    fired_at = millis()
    count = count + 1
  end)
  T.ok(poll_until(mgr, function() return fired_at ~= nil end), "fired")
  local elapsed = fired_at - t0
  T.ok(elapsed >= 100, "not early (" .. elapsed .. " ms)")
  T.ok(elapsed < 1000, "not very late (" .. elapsed .. " ms)")
  sleep_polling(mgr, 150)
  T.eq(count, 1, "fired once")
  mgr:close()
end)

T.test("poll(timeout) wakes up for a due timer", function()
  local mgr = new_manager()
  local fired = false
  mgr:set_timeout(50, function() fired = true end)
  local t0 = millis()
  mgr:poll(5000)
  while not fired and millis() - t0 < 3000 do
    mgr:poll(5000)
  end
  local elapsed = millis() - t0
  T.ok(fired, "fired")
  T.ok(elapsed < 1000, "poll returned for the timer (" .. elapsed .. " ms)")
  mgr:close()
end)

T.test("the callback receives the timer, which set_timeout returned", function()
  local mgr = new_manager()
  local got
  local t = mgr:set_timeout(0, function(arg) got = arg end)
  T.ok(poll_until(mgr, function() return got ~= nil end), "fired")
  T.ok(got == t, "the same timer object")
  mgr:close()
end)

T.test("set_interval: repeats with roughly its interval until cancelled", function()
  local mgr = new_manager()
  local times = {}
  local t0 = millis()
  local t = mgr:set_interval(20, function()
    times[#times + 1] = millis()
  end)
  sleep_polling(mgr, 300)
  t:cancel()
  local n = #times
  T.ok(n >= 5 and n <= 16, "fired " .. n .. " times in 300 ms at 20 ms")
  T.ok(times[1] - t0 >= 20, "first firing after one interval")
  for i = 2, n do
    T.ok(times[i] - times[i - 1] >= 19, "gap " .. (times[i] - times[i - 1]) .. " ms")
  end
  sleep_polling(mgr, 100)
  T.eq(#times, n, "no firing after cancel")
  mgr:close()
end)

T.test("set_interval: cancel from inside its own callback", function()
  local mgr = new_manager()
  local count = 0
  mgr:set_interval(5, function(t)
    count = count + 1
    if count == 3 then
      t:cancel()
    end
  end)
  sleep_polling(mgr, 150)
  T.eq(count, 3, "fired exactly 3 times")
  mgr:close()
end)

T.test("cancel() before the timer is due: it never fires; cancel twice is safe", function()
  local mgr = new_manager()
  local fired = {}
  local a = mgr:set_timeout(20, function() fired.a = true end)
  mgr:set_timeout(40, function() fired.b = true end)
  local c = mgr:set_interval(10, function() fired.c = true end)
  a:cancel()
  a:cancel()
  c:cancel()
  T.ok(poll_until(mgr, function() return fired.b end), "b fired")
  sleep_polling(mgr, 50)
  T.eq(fired.a, nil, "a cancelled")
  T.eq(fired.c, nil, "interval cancelled")
  mgr:close()
end)

T.test("a timer can cancel another one due in the same poll", function()
  local mgr = new_manager()
  local fired = {}
  local second
  mgr:set_timeout(10, function()
    fired[#fired + 1] = "first"
    second:cancel()
  end)
  second = mgr:set_timeout(10, function() fired[#fired + 1] = "second" end)
  mgr:set_timeout(10, function() fired[#fired + 1] = "third" end)
  sleep_polling(mgr, 100)
  T.eq(table.concat(fired, ","), "first,third", "fired")
  mgr:close()
end)

T.test("a timer set from a timer with delay 0 fires in a later poll", function()
  local mgr = new_manager()
  local inner_fired, outer_poll, inner_poll = false, nil, nil
  mgr:set_timeout(0, function()
    outer_poll = mgr.poll_seq
    mgr:set_timeout(0, function()
      inner_fired = true
      inner_poll = mgr.poll_seq
    end)
  end)
  T.ok(poll_until(mgr, function() return inner_fired end), "inner fired")
  T.ok(inner_poll > outer_poll, "in a later poll (" .. outer_poll .. " -> " .. inner_poll .. ")")
  mgr:close()
end)

T.test("a repeating timer that re-arms itself with 0 ms does not starve poll", function()
  local mgr = new_manager()
  local count = 0
  local function again()
    count = count + 1
    mgr:set_timeout(0, again)
  end
  mgr:set_timeout(0, again)
  local t0 = millis()
  for _ = 1, 10 do
    mgr:poll(0)
  end
  T.ok(millis() - t0 < 1000, "ten polls return")
  T.ok(count >= 1 and count <= 10, "at most one firing per poll (" .. count .. ")")
  mgr:close()
end)

T.test("many timers with random delays fire in order of their due times", function()
  local mgr = new_manager()
  math.randomseed(42)
  local fired = {}
  local created_at = millis()
  for i = 1, 500 do
    local d = math.random(0, 60)
    mgr:set_timeout(d, function()
      fired[#fired + 1] = { d = d, i = i, at = millis() }
    end)
  end
  local spread = millis() - created_at  -- all created within this many ms
  T.ok(poll_until(mgr, function() return #fired == 500 end), "all fired")
  for k = 2, #fired do
    T.ok(fired[k].d >= fired[k - 1].d - spread, "order at " .. k)
  end
  for _, f in ipairs(fired) do
    T.ok(f.at - created_at >= f.d, "timer " .. f.i .. " not early")
  end
  mgr:close()
end)

T.test("a failing timer is logged and the other timers keep running", function()
  local mgr, logs = new_manager()
  local ok_fired, interval_count = false, 0
  mgr:set_timeout(10, function() error("timer boom") end)
  mgr:set_timeout(20, function() ok_fired = true end)
  local iv = mgr:set_interval(10, function()
    interval_count = interval_count + 1
    error("interval boom " .. interval_count)
  end)
  T.ok(poll_until(mgr, function() return ok_fired and interval_count >= 3 end), "others ran")
  iv:cancel()
  local boom, iboom = nil, 0
  for _, e in ipairs(logs) do
    if e.msg:find("timer boom", 1, true) then
      boom = e
    end
    if e.msg:find("interval boom", 1, true) then
      iboom = iboom + 1
    end
  end
  T.ok(boom, "the failure is logged")
  T.eq(boom.level, "error", "log level")
  T.match(boom.msg, "^timer failed: ", "log message")
  T.match(boom.msg, "stack traceback", "with a traceback")
  T.ok(iboom >= 3, "a failing interval keeps repeating and each failure is logged (" .. iboom .. ")")
  mgr:close()
end)

T.test("poll from inside a timer raises", function()
  local mgr = new_manager()
  local ok, err
  mgr:set_timeout(0, function()
    ok, err = pcall(mgr.poll, mgr, 0)
  end)
  T.ok(poll_until(mgr, function() return ok ~= nil end), "fired")
  T.eq(ok, false, "poll raised")
  T.match(err, "cannot be called from inside an event handler", "error")
  mgr:close()
end)

T.test("set_timeout / set_interval argument errors raise", function()
  local mgr = new_manager()
  local fn = function() end
  T.raises("delay_ms must be a non%-negative number", mgr.set_timeout, mgr, -1, fn)
  T.raises("delay_ms must be a non%-negative number", mgr.set_timeout, mgr, "10", fn)
  T.raises("delay_ms must be a non%-negative number", mgr.set_timeout, mgr, nil, fn)
  T.raises("fn must be a function", mgr.set_timeout, mgr, 10, nil)
  T.raises("fn must be a function", mgr.set_timeout, mgr, 10, "fn")
  T.raises("interval_ms must be a positive number", mgr.set_interval, mgr, 0, fn)
  T.raises("interval_ms must be a positive number", mgr.set_interval, mgr, -5, fn)
  T.raises("interval_ms must be a positive number", mgr.set_interval, mgr, {}, fn)
  T.raises("fn must be a function", mgr.set_interval, mgr, 10, 42)
  -- the error points at the caller, not at the library
  local ok, err = pcall(function() mgr:set_timeout(-1, fn) end)
  T.eq(ok, false, "raised")
  T.match(err, "test_timers%.lua", "error position is the caller's")
  mgr:close()
end)

T.test("NaN delays and intervals raise", function()
  -- A NaN passes "delay_ms < 0"; if accepted, the timer is due at once
  -- and, for an interval, on every poll, so poll(timeout) never sleeps.
  local mgr = new_manager()
  local fired = 0
  local ok1 = pcall(mgr.set_timeout, mgr, 0 / 0, function() fired = fired + 1 end)
  local ok2, t2 = pcall(mgr.set_interval, mgr, 0 / 0, function() fired = fired + 1 end)
  if ok2 then
    local t0 = millis()
    mgr:poll(50)
    mgr:poll(50)
    T.ok(millis() - t0 >= 90, "with a NaN interval pending, poll(50) still sleeps (took "
         .. (millis() - t0) .. " ms for two polls, " .. fired .. " firings)")
    t2:cancel()
  end
  T.eq(ok1, false, "set_timeout(NaN) raises")
  T.eq(ok2, false, "set_interval(NaN) raises")
  mgr:close()
end)

T.test("an infinite delay never fires and does not block poll", function()
  local mgr = new_manager()
  local fired = false
  local t = mgr:set_timeout(math.huge, function() fired = true end)
  local t0 = millis()
  mgr:poll(20)
  T.ok(millis() - t0 < 1000, "poll with an infinite timer pending returns")
  T.eq(fired, false, "an infinite timeout does not fire")
  t:cancel()
  mgr:close()
end)

T.test("poll(timeout_ms) argument checks: a non-number or NaN raises, a negative one is 0", function()
  local mgr = new_manager()
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, "x")
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, {})
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, 0 / 0)
  local ok, err = pcall(function() mgr:poll("10") end)
  T.eq(ok, false, "raised")
  T.match(err, "^[^\n]*test_timers%.lua:%d+: timeout_ms", "error position is the caller's")
  local t0 = millis()
  T.eq(mgr:poll(-1), 0, "poll(-1)")
  T.eq(mgr:poll(-math.huge), 0, "poll(-inf)")
  T.ok(millis() - t0 < 500, "a negative timeout does not wait")
  mgr:close()
end)

T.test("poll with a huge timeout waits for the next event (no int overflow)", function()
  -- 1e12 ms or math.huge overflowed C's int: poll returned at once, and
  -- a loop around it spun. Cut to 2^31-1 ms, poll sleeps until a client comes.
  local mgr = new_manager()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "woke" end))
  for _, timeout in ipairs({ 1e12, math.huge, 2 ^ 31 }) do
    local job = T.spawn("sleep 0.2; curl -sS -m 5 http://127.0.0.1:" .. l:port() .. "/")
    local t0 = millis()
    mgr:poll(timeout) -- returns once the client connects
    local waited = millis() - t0
    T.ok(waited >= 100, "poll(" .. timeout .. ") waited for the client (" .. waited .. " ms)")
    local out = T.wait(job, mgr, 5000)
    T.eq(out, "woke", "the client was served")
  end
  mgr:close()
end)

T.test("a timer that yields while poll runs inside a coroutine is logged and does not wedge", function()
  local mgr, logs = new_manager()
  local fired = 0
  mgr:set_timeout(0, function() coroutine.yield("from a timer") end)
  mgr:set_timeout(0, function() fired = fired + 1 end)
  local ticks = 0
  mgr:set_interval(5, function(t)
    ticks = ticks + 1
    if ticks == 2 then
      coroutine.yield("from an interval") -- rescheduled before it ran: keeps going
    elseif ticks == 4 then
      t:cancel()
    end
  end)
  local co = coroutine.create(function()
    return poll_until(mgr, function() return fired == 1 and ticks == 4 end, 3000)
  end)
  local resumed, done = coroutine.resume(co)
  T.eq(coroutine.status(co), "dead", "poll did not yield to the caller's coroutine (got "
       .. tostring(done) .. ")")
  T.ok(resumed and done, "the other timers ran (fired " .. fired .. ", ticks " .. ticks .. ")")
  local yields = 0
  for _, e in ipairs(logs) do
    if e.level == "error" and e.msg:find("^timer failed: coroutine%.yield%(%) called") then
      yields = yields + 1
    end
  end
  T.eq(yields, 2, "each yield logged as a timer error")
  T.eq(mgr.dispatching, false, "not left dispatching")
  mgr:set_timeout(0, function() fired = fired + 1 end)
  T.ok(poll_until(mgr, function() return fired == 2 end), "a later poll, outside a coroutine, runs timers")
  mgr:close()
end)

---------------------------------------------------------------------------
-- run / stop
---------------------------------------------------------------------------

T.test("mgr:stop() from a timer makes mgr:run() return, then the manager is closed", function()
  local mgr = new_manager()
  local ticks = 0
  mgr:set_interval(10, function() ticks = ticks + 1 end)
  mgr:set_timeout(100, function() mgr:stop() end)
  local guard = mgr:set_timeout(3000, function() error("run did not stop") end)
  local t0 = millis()
  T.eq(mgr:run({ poll_ms = 50 }), true, "run result")
  local elapsed = millis() - t0
  T.ok(elapsed >= 95 and elapsed < 2000, "run returned after the stop (" .. elapsed .. " ms)")
  T.ok(ticks >= 3, "other timers ran meanwhile (" .. ticks .. ")")
  T.eq(guard.cancelled, false, "the guard timer did not fire")
  T.eq(mgr.closed, true, "closed after run")
  T.raises("manager is closed", mgr.poll, mgr, 0)
  T.raises("manager is closed", mgr.run, mgr)
  T.raises("manager is closed", mgr.connection_count, mgr)
end)

T.test("mgr:stop() with the default poll_ms returns promptly", function()
  local mgr = new_manager()
  mgr:set_timeout(20, function() mgr:stop() end)
  local t0 = millis()
  mgr:run()
  T.ok(millis() - t0 < 1500, "returned after " .. (millis() - t0) .. " ms")
end)

T.test("run() argument errors raise", function()
  local mgr = new_manager()
  T.raises("opts must be a table", mgr.run, mgr, "x")
  T.raises("unknown signal: BOGUS", mgr.run, mgr, { signals = { "BOGUS" } })
  T.raises("poll_ms must be a number of milliseconds", mgr.run, mgr, { poll_ms = "x" })
  T.raises("poll_ms must be a number of milliseconds", mgr.run, mgr, { poll_ms = 0 / 0 })
  T.raises("shutdown_timeout must be a number of milliseconds", mgr.run, mgr, { shutdown_timeout = "1s" })
  local ok, err = pcall(function() mgr:run({ poll_ms = {} }) end)
  T.eq(ok, false, "raised")
  T.match(err, "^[^\n]*test_timers%.lua:%d+: poll_ms", "error position is the caller's")
  T.eq(mgr.closed, false, "raised before running: the manager is still open")
  mgr:close()
end)

T.test("run({poll_ms = math.huge}) still runs timers and stops", function()
  local mgr = new_manager()
  mgr:set_timeout(20, function() mgr:stop() end)
  local t0 = millis()
  T.eq(mgr:run({ poll_ms = math.huge, shutdown_timeout = 0 }), true, "run result")
  T.ok(millis() - t0 < 1500, "returned after " .. (millis() - t0) .. " ms")
end)

T.test("run({signals={'USR1'}}) returns when the process gets SIGUSR1", function()
  local mgr, logs = new_manager("info")
  local pid = ffi.C.getpid()
  T.ok(pid > 1, "pid")
  local sent_at
  mgr:set_timeout(50, function()
    sent_at = millis()
    T.eq(os.execute("kill -USR1 " .. pid), 0, "kill succeeded")
  end)
  local guard_fired = false
  mgr:set_timeout(4000, function()
    guard_fired = true
    mgr:stop()
  end)
  local t0 = millis()
  T.eq(mgr:run({ signals = { "USR1" } }), true, "run result")
  local stopped_at = millis()
  T.ok(sent_at, "the signal was sent")
  T.eq(guard_fired, false, "stopped by the signal, not by the guard")
  T.ok(stopped_at - sent_at < 1500, "returned " .. (stopped_at - sent_at) .. " ms after the signal")
  T.ok(stopped_at - t0 >= 45, "not before the signal")
  local logged = false
  for _, e in ipairs(logs) do
    if e.msg:find("signal 10 received", 1, true) then
      logged = e.level == "info"
    end
  end
  T.ok(logged, "the signal is logged at info level")
  T.eq(mgr.closed, true, "closed after run")
end)

T.test("run({signals={'USR2'}}) returns on SIGUSR2", function()
  local mgr = new_manager()
  local pid = ffi.C.getpid()
  mgr:set_timeout(30, function() os.execute("kill -USR2 " .. pid) end)
  local guard_fired = false
  mgr:set_timeout(4000, function()
    guard_fired = true
    mgr:stop()
  end)
  local t0 = millis()
  T.eq(mgr:run({ signals = { "USR2" }, poll_ms = 100 }), true, "run result")
  T.eq(guard_fired, false, "stopped by USR2, not by the guard")
  T.ok(millis() - t0 < 2000, "returned promptly")
end)

T.test("run() shuts down listeners and lets queued responses go out", function()
  local mgr = new_manager()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    mgr:stop()  -- stop while the reply is queued
    return 200, string.rep("z", 200000)
  end))
  local port = l:port()
  local job = T.spawn("curl -sS -m 5 -o /dev/null -w '%{size_download}' http://127.0.0.1:" .. port .. "/")
  local guard_fired = false
  mgr:set_timeout(5000, function()
    guard_fired = true
    mgr:stop()
  end)
  mgr:run({ poll_ms = 50 })
  T.eq(guard_fired, false, "stopped by the handler")
  local out = T.wait(job, nil, 8000)
  T.eq(out, "200000", "the whole response reached curl")
  local after = T.run_client(nil, "curl -sS -m 2 http://127.0.0.1:" .. port .. "/ >/dev/null 2>&1"
                                  .. " || echo refused")
  T.eq(after, "refused\n", "the listener is gone after run()")
end)

-- T.run ends with os.exit: remove the temporary files (the big bodies)
-- in front of it.
local real_exit = os.exit
os.exit = function(...)  -- luacheck: ignore 122
  os.execute("rm -rf " .. T.q(T.tmpdir()))
  return real_exit(...)
end

T.run()
