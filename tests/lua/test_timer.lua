-- The manager's timers (mongoose.timer): set_timeout, set_interval,
-- cancel; their order, their delays, failures and argument checks.
local T = require("testlib")
local mongoose = require("mongoose")
local millis = mongoose.core.millis

-- A manager whose log messages are collected in the returned table.
local function new_manager(log_level)
  return T.logging_manager({ log_level = log_level })
end

-- Polls until cond() or timeout_ms; returns cond().
local function poll_until(mgr, cond, timeout_ms)
  return T.poll_until(mgr, cond, timeout_ms or 3000)
end
local sleep_polling = T.sleep_polling

---------------------------------------------------------------------------
-- set_timeout
---------------------------------------------------------------------------

-- mgr_test(name, fn): a test running fn(mgr) with a new manager.
local _, mgr_test = T.managers(new_manager)

-- A test: one set_timeout per delay of delays (in that order), each
-- recording its label (its delay, or its index with by_index); they must
-- all fire, in the order want.
local function order_test(name, delays, by_index, want)
  mgr_test(name, function(mgr)
    local order = {}
    for i, d in ipairs(delays) do
      mgr:set_timeout(d, function()
        order[#order + 1] = by_index and i or d
      end)
    end
    T.ok(poll_until(mgr, function() return #order == #delays end), "all fired")
    T.eq(table.concat(order, ","), want, "order")
  end)
end

order_test("set_timeout: timers fire in order of their delays", { 30, 10, 20, 0, 40 }, false, "0,10,20,30,40")
order_test("set_timeout: equal delays fire in the order they were set", { 20, 20, 20, 20, 20, 20, 20, 20, 20, 20 },
           true, "1,2,3,4,5,6,7,8,9,10")

mgr_test("set_timeout: fires once, not before its delay", function(mgr)
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
end)

mgr_test("poll(timeout) wakes up for a due timer", function(mgr)
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
end)

mgr_test("the callback receives the timer, which set_timeout returned", function(mgr)
  local got
  local t = mgr:set_timeout(0, function(arg) got = arg end)
  T.ok(poll_until(mgr, function() return got ~= nil end), "fired")
  T.ok(got == t, "the same timer object")
end)

---------------------------------------------------------------------------
-- set_interval and cancel
---------------------------------------------------------------------------

mgr_test("set_interval: repeats with roughly its interval until cancelled", function(mgr)
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
end)

mgr_test("set_interval: cancel from inside its own callback", function(mgr)
  local count = 0
  mgr:set_interval(5, function(t)
    count = count + 1
    if count == 3 then
      t:cancel()
    end
  end)
  sleep_polling(mgr, 150)
  T.eq(count, 3, "fired exactly 3 times")
end)

mgr_test("cancel() before the timer is due: it never fires; cancel twice is safe", function(mgr)
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
end)

mgr_test("a timer can cancel another one due in the same poll", function(mgr)
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
end)

mgr_test("a timer set from a timer with delay 0 fires in a later poll", function(mgr)
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
end)

mgr_test("a repeating timer that re-arms itself with 0 ms does not starve poll", function(mgr)
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
end)

mgr_test("many timers with random delays fire in order of their due times", function(mgr)
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
end)

---------------------------------------------------------------------------
-- Failures and argument checks
---------------------------------------------------------------------------

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

mgr_test("poll from inside a timer raises", function(mgr)
  local ok, err
  mgr:set_timeout(0, function()
    ok, err = pcall(mgr.poll, mgr, 0)
  end)
  T.ok(poll_until(mgr, function() return ok ~= nil end), "fired")
  T.eq(ok, false, "poll raised")
  T.match(err, "cannot be called from inside an event handler", "error")
end)

mgr_test("set_timeout / set_interval argument errors raise", function(mgr)
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
  T.match(err, "test_timer%.lua", "error position is the caller's")
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

mgr_test("an infinite delay never fires and does not block poll", function(mgr)
  local fired = false
  local t = mgr:set_timeout(math.huge, function() fired = true end)
  local t0 = millis()
  mgr:poll(20)
  T.ok(millis() - t0 < 1000, "poll with an infinite timer pending returns")
  T.eq(fired, false, "an infinite timeout does not fire")
  t:cancel()
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

T.run()
