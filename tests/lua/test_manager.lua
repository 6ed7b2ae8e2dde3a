-- The manager (mongoose.manager): poll and its timeout, run()/stop() and
-- run()'s signal handling and shut-down, the per-poll queue cap
-- (max_queue_bytes), and attach_luv's argument check (which needs no luv).
local ffi = require("ffi")
local T = require("testlib")
local mongoose = require("mongoose")
local millis = mongoose.core.millis

-- A manager whose log messages are collected in the returned table.
local function new_manager(log_level)
  return T.logging_manager({ log_level = log_level })
end

local core = mongoose.core

ffi.cdef [[
int getpid(void);
]]

-- Stops mgr after ms if nothing else did first; returns a function that
-- tells whether it had to.
local function stop_guard(mgr, ms)
  local fired = false
  mgr:set_timeout(ms, function()
    fired = true
    mgr:stop()
  end)
  return function() return fired end
end

---------------------------------------------------------------------------
-- poll
---------------------------------------------------------------------------

T.test("poll(timeout_ms) argument checks: a non-number or NaN raises, a negative one is 0", function()
  local mgr = new_manager()
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, "x")
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, {})
  T.raises("timeout_ms must be a number of milliseconds", mgr.poll, mgr, 0 / 0)
  local ok, err = pcall(function() mgr:poll("10") end)
  T.eq(ok, false, "raised")
  T.match(err, "^[^\n]*test_manager%.lua:%d+: timeout_ms", "error position is the caller's")
  local t0 = millis()
  T.eq(mgr:poll(-1), 0, "poll(-1)")
  T.eq(mgr:poll(-math.huge), 0, "poll(-inf)")
  T.ok(millis() - t0 < 500, "a negative timeout does not wait")
  mgr:close()
end)

T.test("poll with a huge timeout waits for the next event (no int overflow)", function()
  if jit.os == "Windows" then
    T.skip("under Wine the previous client's close reaches the next poll late and ends it early")
  end
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
  T.match(err, "^[^\n]*test_manager%.lua:%d+: poll_ms", "error position is the caller's")
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
  if jit.os == "Windows" then
    T.skip("no SIGUSR1/SIGUSR2 on Windows, and a Linux signal does not reach a Wine process's C runtime")
  end
  local mgr, logs = new_manager("info")
  local pid = ffi.C.getpid()
  T.ok(pid > 1, "pid")
  local sent_at
  mgr:set_timeout(50, function()
    sent_at = millis()
    T.eq(os.execute("kill -USR1 " .. pid), 0, "kill succeeded")
  end)
  local guard_fired = stop_guard(mgr, 4000)
  local t0 = millis()
  T.eq(mgr:run({ signals = { "USR1" } }), true, "run result")
  local stopped_at = millis()
  T.ok(sent_at, "the signal was sent")
  T.eq(guard_fired(), false, "stopped by the signal, not by the guard")
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
  if jit.os == "Windows" then
    T.skip("no SIGUSR1/SIGUSR2 on Windows, and a Linux signal does not reach a Wine process's C runtime")
  end
  local mgr = new_manager()
  local pid = ffi.C.getpid()
  mgr:set_timeout(30, function() os.execute("kill -USR2 " .. pid) end)
  local guard_fired = stop_guard(mgr, 4000)
  local t0 = millis()
  T.eq(mgr:run({ signals = { "USR2" }, poll_ms = 100 }), true, "run result")
  T.eq(guard_fired(), false, "stopped by USR2, not by the guard")
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
  local guard_fired = stop_guard(mgr, 5000)
  mgr:run({ poll_ms = 50 })
  T.eq(guard_fired(), false, "stopped by the handler")
  local out = T.wait(job, nil, 8000)
  T.eq(out, "200000", "the whole response reached curl")
  local after = T.run_client(nil, "curl -sS -m 2 http://127.0.0.1:" .. port .. "/ >/dev/null 2>&1"
                                  .. " || echo refused")
  T.eq(after, "refused\n", "the listener is gone after run()")
end)

---------------------------------------------------------------------------
-- The per-poll queue cap (max_queue_bytes)
---------------------------------------------------------------------------

T.test("max_queue_bytes: the per-poll queue cap bounds what one poll delivers", function()
  local cap = 65536
  local m2 = assert(mongoose.new_manager({ max_queue_bytes = cap }))
  local this_poll, max_poll, total = 0, 0, 0
  local l = assert(m2:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(_, view)
      this_poll = this_poll + view.len
      total = total + view.len
    end,
  }))
  local job = T.spawn(T.q(T.python) .. " -c " .. T.q([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"q" * (4 * 1024 * 1024))
s.close()
]]) .. " " .. l:port())
  local deadline = core.millis() + 20000
  while total < 4 * 1024 * 1024 and core.millis() < deadline do
    this_poll = 0
    m2:poll(5)
    if this_poll > max_poll then
      max_poll = this_poll
    end
  end
  local _, rc = T.wait(job, nil, 5000)
  T.eq(rc, 0, "python exit status")
  T.eq(total, 4 * 1024 * 1024, "every byte arrived")
  T.ok(max_poll <= cap, "at most " .. cap .. " bytes per poll (saw " .. max_poll .. ")")
  m2:close()
end)

T.test("max_queue_bytes: a queue cap smaller than one read still lets data through", function()
  -- One socket read is up to 16 KiB (MG_IO_SIZE); a smaller cap must not
  -- starve the connection.
  local m2 = assert(mongoose.new_manager({ max_queue_bytes = 4096 }))
  local total = 0
  local l = assert(m2:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(_, view)
      total = total + view.len
    end,
  }))
  local job = T.spawn(T.q(T.python) .. " -c " .. T.q([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"q" * 100000)
s.close()
]]) .. " " .. l:port())
  T.poll_until(m2, function() return total >= 100000 end, 5000)
  T.wait(job, nil, 5000)
  T.eq(total, 100000, "bytes delivered with a 4 KiB cap")
  m2:close()
end)

---------------------------------------------------------------------------
-- attach_luv without luv
---------------------------------------------------------------------------

T.test("attach_luv rejects something that is not the luv module", function()
  local mgr = assert(mongoose.new_manager())
  T.raises("uv must be the luv module", mgr.attach_luv, mgr, {})
  T.eq(mgr.luv, nil, "not attached")
  mgr:close()
end)

T.run()
