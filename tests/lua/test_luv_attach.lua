-- mongoose.luv: attaching and detaching a manager (attach_luv,
-- detach_luv, mgr:close, interval mode), detaching from inside Mongoose
-- callbacks (in a child LuaJIT), the glue's deadlines waking an idle loop
-- (408, idle_timeout) and the CPU an idle attached manager uses. Skipped
-- when luv is missing.
local T = require("testlib")
local L = require("testluv")
local uv, test, new_manager, cleanup = L.uv, L.test, L.new_manager, L.cleanup
local ms_now, loop_until, loop_for, run_child = L.ms_now, L.loop_until, L.loop_for, L.run_child
local curl, luv_client, hello_server = L.curl, L.luv_client, L.hello_server
local attachment_handles, walked_handles = L.attachment_handles, L.walked_handles

test("detach stops serving and closes the luv handles", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  local att = assert(mgr:attach_luv(uv))
  local hs = attachment_handles(att)
  T.eq(#hs, 3, "poll, prepare and timer handles")
  local set = walked_handles()
  for _, h in ipairs(hs) do
    T.ok(set[h], "uv.walk shows " .. tostring(h) .. " while attached")
  end

  T.eq((L.curl_wait({ base .. "/before" }, "curl before detach")), 0, "served while attached")

  T.eq(mgr:detach_luv(), true, "detach_luv")
  T.eq(mgr.luv, nil, "mgr.luv after detach")
  T.eq(mgr:detach_luv(), false, "second detach_luv")
  uv.run("nowait")
  set = walked_handles()
  for _, h in ipairs(hs) do
    T.ok(not set[h], "uv.walk no longer shows " .. tostring(h))
  end

  -- The listening socket still exists, so the kernel accepts, but nothing
  -- answers: only uv.run runs.
  local code, out = L.curl_wait({ "--max-time", "1", base .. "/after" }, "curl after detach")
  T.eq(code, 28, "curl exit (28: timed out) after detach; output " .. tostring(out))

  -- With its own handles gone, the loop has nothing left to wait for.
  cleanup()
  T.eq(uv.loop_alive(), false, "loop alive with no handles left")
  T.eq(uv.run(), false, "uv.run returns by itself")
end)

test("attach again after detach serves again", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  assert(mgr:attach_luv(uv))
  mgr:detach_luv()
  assert(mgr:attach_luv(uv))
  L.expect_hello(base, "/again")
end)

test("mgr:close() while attached detaches", function()
  local mgr = new_manager()
  hello_server(mgr)
  local att = assert(mgr:attach_luv(uv))
  local hs = attachment_handles(att)
  mgr:close()
  T.eq(mgr.luv, nil, "mgr.luv after close")
  for _, h in ipairs(hs) do
    T.ok(h:is_closing(), tostring(h) .. " closing")
  end
  uv.run("nowait")
  local set = walked_handles()
  for _, h in ipairs(hs) do
    T.ok(not set[h], "uv.walk no longer shows " .. tostring(h))
  end
  T.eq(uv.loop_alive(), false, "loop alive")
  T.eq(mgr:detach_luv(), false, "detach after close")
end)

test("attach twice returns nil, err; bad arguments raise", function()
  local mgr = new_manager()
  local att = assert(mgr:attach_luv(uv))
  local again, err = mgr:attach_luv(uv)
  T.eq(again, nil, "second attach")
  T.match(err, "already attached")
  T.eq(mgr.luv, att, "first attachment kept")
  local again2 = mgr:attach_luv(uv, { mode = "interval" })
  T.eq(again2, nil, "second attach in interval mode")

  local other = new_manager()
  T.raises("uv must be the luv module", other.attach_luv, other, {})
  T.raises("opts must be a table", other.attach_luv, other, uv, 5)
  T.raises("mode must be", other.attach_luv, other, uv, { mode = "select" })
  T.raises("interval must be a positive number", other.attach_luv, other, uv,
           { mode = "interval", interval = 0 })
  T.eq(other.luv, nil, "not attached after errors")
  other:close()
  T.raises("manager is closed", other.attach_luv, other, uv)
  -- No handles were left behind by the failed attaches.
  mgr:detach_luv()
  uv.run("nowait")
  T.eq(uv.loop_alive(), false, "loop alive")
end)

test("interval mode serves requests too", function()
  local mgr = new_manager()
  local server, base = hello_server(mgr)
  local att = assert(mgr:attach_luv(uv, { mode = "interval", interval = 5 }))
  T.eq(att.mode, "interval", "mode")
  T.eq(att.poll, nil, "no poll handle in interval mode")
  local done, good = 0, 0
  for i = 1, 10 do
    curl({ base .. "/i" .. i }, function(c, o)
      done = done + 1
      if c == 0 and o == "hello /i" .. i .. "\n" then
        good = good + 1
      end
    end)
  end
  local st = luv_client(server:port(), "GET /tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  loop_until(function() return done == 10 and st.eof end, 15000, "10 curls and a luv client")
  T.eq(good, 10, "good answers")
  T.match(st.data, "hello /tcp\n$")
  mgr:detach_luv()
  uv.run("nowait")
  T.eq(uv.loop_alive(), false, "loop alive after detach")
end)

-- Detaching from inside a Mongoose callback (a handler or a Mongoose timer,
-- which run inside the attachment's own luv callbacks) must not break the
-- loop. These run in a child process: an uncaught error in a luv callback
-- ends the process.
local CHILD_PREAMBLE = [[
local uv = require("luv")
local mongoose = require("mongoose")
local mgr = assert(mongoose.new_manager())
local guard = uv.new_timer()
guard:start(3000, 0, function() print("guard fired"); os.exit(3) end)
]]

test("detach from a Mongoose timer while another Mongoose timer is pending", function()
  local rc, out, err = run_child(CHILD_PREAMBLE .. [[
local ticks = 0
local every = mgr:set_interval(10, function() ticks = ticks + 1 end)
mgr:set_timeout(50, function()
  mgr:detach_luv()
  print("detached after " .. ticks .. " ticks")
end)
assert(mgr:attach_luv(uv))
local stop = uv.new_timer()
stop:start(200, 0, function() stop:close(); guard:close() end)
uv.run()
every:cancel()
mgr:close()
print("loop ended")
]])
  T.eq(rc, 0, "child exit code; stderr: " .. err)
  T.match(out, "detached after %d+ ticks\nloop ended\n")
end)

test("detach from an HTTP handler, then set a timer", function()
  local rc, out, err = run_child(CHILD_PREAMBLE .. [[
local server = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  mgr:detach_luv()
  mgr:set_timeout(10, function() end)
  return 200, "bye\n"
end))
assert(mgr:attach_luv(uv))
local tcp = uv.new_tcp()
tcp:connect("127.0.0.1", server:port(), function(e)
  assert(not e, e)
  tcp:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
  tcp:read_start(function() end)
end)
local stop = uv.new_timer()
stop:start(200, 0, function() stop:close(); tcp:close(); guard:close() end)
uv.run()
print("loop ended, attached: " .. tostring(mgr.luv))
mgr:close()
]])
  T.eq(rc, 0, "child exit code; stderr: " .. err)
  T.match(out, "loop ended, attached: nil\n")
end)

-- Idle CPU: the loop runs ~1 s with a listener, an idle keep-alive
-- connection and a half-sent request, and nothing happening.
local function idle_ticks(opts, ms)
  local mgr = new_manager()
  local server = hello_server(mgr)
  assert(mgr:attach_luv(uv, opts))
  local keep = luv_client(server:port(), "GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
  local half = luv_client(server:port(), "GET /half HTTP/1.1\r\nHo")
  loop_until(function() return keep.data:find("hello /k\n", 1, true) ~= nil and half.connected end,
             5000, "setup")
  local before = T.cpu_ticks()
  local t0 = ms_now()
  loop_for(ms)
  local used = T.cpu_ticks() - before
  local elapsed = ms_now() - t0
  T.eq(keep.eof, false, "keep-alive connection still open")
  T.eq(half.eof, false, "half-sent request still open")
  mgr:close()
  cleanup()
  return used, elapsed
end

test("slowloris under luv: a half-sent request head gets 408 at request_timeout", function()
  -- Nothing else runs in the loop: only the deadline the glue reports can
  -- wake it for the 408 (a partial head must not read as "poll now").
  local mgr = new_manager()
  local server = hello_server(mgr, { request_timeout = 300 })
  assert(mgr:attach_luv(uv))
  local st = luv_client(server:port(), "GET /slow HTTP/1.1\r\nHost: x\r\n")
  local started = ms_now()
  loop_until(function() return st.eof end, 5000, "the server closing the half-sent request")
  T.match(st.data, "^HTTP/1%.1 408 ", "408 reply")
  T.ok(ms_now() - started < 2500, "closed within a few request_timeouts: " .. (ms_now() - started) .. " ms")
end)

test("idle_timeout under luv: a silent keep-alive connection is closed", function()
  local mgr = new_manager()
  local server = hello_server(mgr, { idle_timeout = 300 })
  assert(mgr:attach_luv(uv))
  local st = luv_client(server:port(), "GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
  loop_until(function() return st.eof end, 5000, "the server closing the idle connection")
  T.match(st.data, "hello /once", "the request was answered first")
end)

test("idle CPU: an attached manager sleeps in the kernel (epoll mode)", function()
  local used, elapsed = idle_ticks(nil, 1000)
  print(string.format("       epoll mode: %d ticks of CPU in %.0f ms idle", used, elapsed))
  T.ok(used < 5, "CPU ticks used in " .. elapsed .. " ms idle: " .. used)
end)

test("idle CPU: interval mode at 1 ms uses more (reported, not asserted)", function()
  local used, elapsed = idle_ticks({ mode = "interval", interval = 1 }, 1000)
  print(string.format("       interval mode (1 ms): %d ticks of CPU in %.0f ms idle", used, elapsed))
  T.ok(used >= 0 and used <= elapsed / 10 + 2, "sane tick count: " .. used)
end)

T.run()
