-- Handlers that wait without blocking (mongoose.coro): every handler and
-- callback runs in a pooled task; mongoose.sleep, fetch, socket reads
-- wait by yielding to the manager while it serves others; errors after
-- waits answer 500; request_timeout bounds a handler that never answers;
-- a client that goes away cancels the handler's waits.
local T = require("testlib")
local H = require("testhttp").server()
local mongoose = require("mongoose")
local coro = require("mongoose.coro")

local mgr, routes = H.mgr, H.routes
local millis = mongoose.core.millis
local state = {}

routes["/sleep"] = function(req)
  local ms = tonumber(req:query_params("ms")) or 300
  local t0 = millis()
  local ok, err = mongoose.sleep(ms)
  return 200, "slept " .. tostring(ok) .. " " .. tostring(err) .. " " .. (millis() - t0) .. "\n"
end
routes["/fast"] = function()
  return 200, "fast\n"
end
routes["/fail-after-waits"] = function()
  mongoose.sleep(5)
  mongoose.sleep(0)
  local r = assert(mgr:fetch(H.BASE .. "/fast"))
  state.fetched_before_failing = r.body
  error("broken after three waits")
end
routes["/upstream"] = function()
  -- Sequential code: two requests to another handler of the same server.
  local a = assert(mgr:fetch(H.BASE .. "/sleep?ms=20"))
  local b = assert(mgr:fetch(H.BASE .. "/fast"))
  return 200, a.status .. " " .. b.body
end
routes["/forever"] = function()
  local t0 = millis()
  local ok, err = mongoose.sleep(60000)
  local ok2, err2 = mongoose.sleep(10) -- a later wait fails at once
  state.forever = { ok = ok, err = err, ok2 = ok2, err2 = err2, waited = millis() - t0 }
end
routes["/gone"] = function()
  local t0 = millis()
  local ok, err = mongoose.sleep(20000)
  state.gone = { ok = ok, err = err, waited = millis() - t0 }
end

T.test("20 sleeping handlers finish together while a fast request is answered at once", function()
  local out, rc = H.sh([[
for i in $(seq 1 20); do
  curl -sS -m 5 -o /dev/null -w "%{http_code}\n" "]] .. H.BASE .. [[/sleep?ms=400" >> "$0.slow" &
done
sleep 0.1
curl -sS -m 5 -o /dev/null -w "fast %{http_code} %{time_total}\n" "]] .. H.BASE .. [[/fast"
wait
sort "$0.slow" | uniq -c | tr -s ' '
]], 15000)
  T.eq(rc, 0, "script status")
  local fast_status, fast_time = out:match("fast (%d+) ([%d.]+)")
  T.eq(fast_status, "200", "the fast request")
  T.ok(tonumber(fast_time) < 0.2, "the fast request took " .. fast_time .. " s (sleepers in progress)")
  T.match(out, " 20 200", "all 20 sleepers answered 200")
end)

T.test("the 20 sleepers took 400 ms together, not one after another", function()
  local t0 = millis()
  local out = H.sh([[
for i in $(seq 1 20); do curl -sS -m 5 "]] .. H.BASE .. [[/sleep?ms=400" & done
wait
]], 15000)
  local elapsed = millis() - t0
  local n = 0
  for waited in out:gmatch("slept true nil (%d+)") do
    n = n + 1
    T.ok(tonumber(waited) >= 399, "each slept 400 ms (" .. waited .. ")")
  end
  T.eq(n, 20, "answers")
  T.ok(elapsed < 3000, "all 20 done in " .. elapsed .. " ms (serially: 8000)")
end)

T.test("an error after three waits answers 500 and is logged with its traceback", function()
  local n0 = #H.logs
  local out = H.curl("-i " .. H.BASE .. "/fail-after-waits")
  local r = T.ok(T.parse_response(out), "a response")
  T.eq(r.status, 500, "status")
  T.eq(r.body, "Internal Server Error\n", "body")
  T.eq(state.fetched_before_failing, "fast\n", "the waits before the error completed")
  local e = T.ok(T.find_log(H.logs, "HTTP handler for GET /fail-after-waits failed", "error", n0 + 1),
                 "logged")
  T.match(e.msg, "broken after three waits", "the message")
  T.match(e.msg, "stack traceback", "the traceback")
  T.match(e.msg, "test_coro%.lua:%d+", "the traceback names the handler's line")
  T.eq(H.curl(H.BASE .. "/fast"), "fast\n", "the server goes on")
end)

T.test("a handler calls another service sequentially with fetch", function()
  T.eq(H.curl(H.BASE .. "/upstream"), "200 fast\n", "both answers")
end)

T.test("a handler that never answers gets 504 at request_timeout; its waits return closed", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", H.handler, { request_timeout = 300 }))
  local n0 = #H.logs
  local t0 = millis()
  local out = T.curl(mgr, "-i http://127.0.0.1:" .. l:port() .. "/forever")
  local elapsed = millis() - t0
  local r = T.ok(T.parse_response(out), "a response: " .. out)
  T.eq(r.status, 504, "status")
  T.ok(elapsed >= 290 and elapsed < 2000, "answered after " .. elapsed .. " ms")
  T.ok(T.poll_until(mgr, function() return state.forever ~= nil end, 1000), "the handler ended")
  T.eq(state.forever.ok, nil, "its sleep was cut")
  T.eq(state.forever.err, "closed", "with closed")
  T.eq(state.forever.err2, "closed", "a later wait fails at once")
  T.ok(state.forever.waited < 1500, "it waited " .. state.forever.waited .. " ms")
  T.ok(T.find_log(H.logs, "did not answer within request_timeout (300 ms)", "error", n0 + 1), "logged")
  l:close()
end)

T.test("a client that goes away cancels the handler's waits", function()
  state.gone = nil
  local t0 = millis()
  H.pyc([[
s = conn()
s.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.2)
s.close()
]], H.PORT)
  T.ok(T.poll_until(mgr, function() return state.gone ~= nil end, 5000), "the handler ended")
  T.eq(state.gone.ok, nil, "sleep result")
  T.eq(state.gone.err, "closed", "sleep error")
  T.ok(millis() - t0 < 4000, "cancelled soon after the client left")
  T.eq(H.curl(H.BASE .. "/fast"), "fast\n", "the server goes on")
end)

T.test("tasks come from a pool: handlers that do not wait create no coroutine", function()
  for _ = 1, 5 do
    assert(mgr:fetch(H.BASE .. "/fast"))
  end
  local before = coro.stats().created
  for _ = 1, 100 do
    assert(mgr:fetch(H.BASE .. "/fast"))
  end
  T.eq(coro.stats().created - before, 0, "coroutines created for 100 more requests")
  T.ok(coro.stats().pooled > 0, "idle tasks wait in the pool")
end)

T.test("WebSocket and TCP handlers run in the dispatcher: no task per message, errors logged by name", function()
  local n0 = #H.logs
  state.ws_direct = 0
  local ws = assert(mgr:ws_listen("http://127.0.0.1:0", {
    on_message = function(w, data)
      if data == "boom" then
        error("ws handler broke")
      elseif data == "late boom" then
        mongoose.sleep(5)
        error("ws handler broke after a wait")
      end
      -- Called from the dispatcher itself (Manager:event_call), not in a
      -- task of its own: the dispatcher names the handler it runs.
      state.ws_direct = state.ws_direct + (mgr.dispatch_what == "WebSocket on_message" and 1 or 0)
      w:send("echo " .. data)
    end,
  }))
  local tcp = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(conn, view)
      state.tcp_direct = mgr.dispatch_what == "TCP on_data"
      local s = view:string()
      if s == "boom" then
        error("tcp handler broke")
      end
      conn:send("echo " .. s)
    end,
  }))
  local replies, tcp_got = {}, {}
  local client = assert(mgr:ws_connect("ws://127.0.0.1:" .. ws:port() .. "/", {
    on_message = function(_, data) replies[#replies + 1] = data end,
  }))
  local tc = assert(mgr:tcp_connect("tcp://127.0.0.1:" .. tcp:port(), {
    on_data = function(_, view) tcp_got[#tcp_got + 1] = view:string() end,
  }))
  T.ok(T.poll_until(mgr, function() return client.open end, 3000), "the WebSocket is open")
  client:send("warm")
  T.ok(T.poll_until(mgr, function() return #replies == 1 end, 3000), "a first echo")
  local before = coro.stats().created
  for i = 1, 100 do
    client:send("m" .. i)
    T.ok(T.poll_until(mgr, function() return #replies == i + 1 end, 3000), "echo " .. i)
  end
  T.eq(coro.stats().created - before, 0, "coroutines created for 100 echoes")
  T.eq(state.ws_direct, 101, "on_message called by the dispatcher itself")
  T.eq(replies[101], "echo m100", "the last echo")
  client:send("boom")
  client:send("late boom")
  client:send("after")
  T.ok(T.poll_until(mgr, function() return replies[#replies] == "echo after" end, 3000),
       "the WebSocket is served after its handler raised")
  T.ok(T.poll_until(mgr, function()
    return T.find_log(H.logs, "ws handler broke after a wait", "error", n0 + 1) ~= nil
  end, 3000), "the error after a wait is logged")
  local e = T.ok(T.find_log(H.logs, "WebSocket on_message failed", "error", n0 + 1), "logged by name")
  T.match(e.msg, "ws handler broke", "the message")
  T.match(e.msg, "test_coro%.lua:%d+", "the traceback names the handler's line")
  e = T.find_log(H.logs, "ws handler broke after a wait", "error", n0 + 1)
  T.match(e.msg, "^WebSocket on_message failed", "the error after a wait, by name")
  tc:send("boom")
  T.ok(T.poll_until(mgr, function() return T.find_log(H.logs, "TCP on_data failed", "error", n0 + 1) end,
                    3000), "the TCP handler's error is logged by name")
  tc:send("ok")
  T.ok(T.poll_until(mgr, function() return tcp_got[#tcp_got] == "echo ok" end, 3000),
       "the TCP connection is served after its handler raised")
  T.eq(state.tcp_direct, true, "on_data called by the dispatcher itself")
  client:close()
  tc:close()
  ws:close()
  tcp:close()
end)

T.test("timers, TCP, UDP and WebSocket callbacks may wait", function()
  local got = {}
  mgr:set_timeout(0, function()
    mongoose.sleep(20)
    got.timer = true
  end)
  local tcp = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      while true do -- sequential line protocol in the accept task
        local line, err = conn:read_until("\n")
        if not line then
          got.tcp_end = err
          return
        end
        mongoose.sleep(10)
        conn:send("echo " .. line .. "\n")
      end
    end,
  }))
  local udp = assert(mgr:udp_listen("udp://127.0.0.1:0", {
    on_datagram = function(sock, view, from)
      local data, to = view:string(), from:copy() -- the view ends at the first wait
      mongoose.sleep(10)
      sock:send_to(to, "late " .. data)
    end,
  }))
  local ws = assert(mgr:ws_listen("http://127.0.0.1:0", {
    on_message = function(w, data)
      mongoose.sleep(10)
      w:send("slow " .. data)
    end,
  }))
  local out = H.pyc([[
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s.sendall(b"a\nb\n")
buf = b""
while buf.count(b"\n") < 2:
    buf += s.recv(100)
out("tcp", buf.decode().replace("\n", "|"))
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"dgram", ("127.0.0.1", int(sys.argv[3])))
out("udp", u.recvfrom(100)[0].decode())
]], H.PORT .. " " .. tcp:port() .. " " .. udp:port())
  T.match(out, "tcp echo a|echo b|", "TCP")
  T.match(out, "udp late dgram", "UDP")
  local replies = {}
  local client = assert(mgr:ws_connect("ws://127.0.0.1:" .. ws:port() .. "/", {
    on_open = function(w) w:send("one") end,
    on_message = function(_, data) replies[#replies + 1] = data end,
  }))
  T.ok(T.poll_until(mgr, function() return #replies == 1 end, 3000), "WebSocket reply")
  T.eq(replies[1], "slow one", "WebSocket")
  T.ok(T.poll_until(mgr, function() return got.timer and got.tcp_end end, 3000), "timer and TCP end")
  T.eq(got.tcp_end, "closed", "the TCP reader saw the close")
  client:close()
  tcp:close()
  udp:close()
  ws:close()
end)

T.test("ws:receive() and a client's sequential session", function()
  local ws_listener = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    local ws = assert(res:upgrade())
    while true do
      local msg, kind = ws:receive()
      if not msg then
        state.ws_end = kind
        return
      end
      ws:send(kind .. ":" .. msg)
    end
  end))
  local results
  mgr:spawn(function()
    local c = assert(mgr:ws_connect("ws://127.0.0.1:" .. ws_listener:port() .. "/"))
    c:send("hi")
    c:send("\1\2", "binary")
    local a = c:receive(3000)
    local b = c:receive(3000)
    local none, err = c:receive(50)
    results = { a, b, none, err }
    c:close()
  end)
  T.ok(T.poll_until(mgr, function() return results ~= nil end, 3000), "the client task ended")
  T.eq(results[1], "text:hi", "first")
  T.eq(results[2], "binary:\1\2", "second")
  T.eq(results[3], nil, "nothing more")
  T.eq(results[4], "timeout", "a receive timeout")
  T.ok(T.poll_until(mgr, function() return state.ws_end ~= nil end, 3000), "the server session ended")
  T.eq(state.ws_end, "closed", "receive returned closed")
  ws_listener:close()
end)

T.test("req:read_body() gives a streamed upload piece by piece, also after a wait", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if not req.streaming then -- a whole body: read_body gives it once
      local body, rest = req:read_body(), req:read_body()
      return 200, "whole " .. body .. " " .. tostring(rest)
    end
    mongoose.sleep(50) -- pieces arriving meanwhile wait for the reader
    local size, pieces = 0, 0
    while true do
      local piece, err = req:read_body()
      if not piece then
        assert(err == nil, err)
        break
      end
      size, pieces = size + #piece, pieces + 1
    end
    return 200, size .. " bytes in " .. (pieces > 1 and "pieces" or "one piece")
  end, { stream_threshold = 1024 }))
  local f = T.tmpdir() .. "/upload.bin"
  T.write_file(f, T.random_bytes(3000000, 7))
  local out = T.curl(mgr, "--data-binary @" .. T.q(f) .. " http://127.0.0.1:" .. l:port() .. "/")
  T.eq(out, "3000000 bytes in pieces", "the handler read it all")
  local small = T.curl(mgr, "-d abc http://127.0.0.1:" .. l:port() .. "/")
  T.eq(small, "whole abc nil", "a body under the threshold: once, then nil")
  l:close()
end)

T.test("waits outside a task: mongoose.sleep and fetch poll the manager", function()
  local job = T.spawn("curl -sS -m 5 " .. H.BASE .. "/fast")
  local t0 = millis()
  T.eq(mongoose.sleep(300, mgr), true, "sleep returns true")
  T.ok(millis() - t0 >= 299, "slept 300 ms")
  local out = T.wait(job, mgr)
  T.eq(out, "fast\n", "the server answered while the main program slept")
  T.eq(assert(mgr:fetch(H.BASE .. "/sleep?ms=10")).status, 200, "fetch from the main program")
end)

T.test("a coroutine of the program's own cannot wait inside a handler", function()
  routes["/own-coroutine"] = function()
    local co = coroutine.create(function() return mongoose.sleep(10) end)
    local ok, err = coroutine.resume(co)
    return 200, tostring(ok) .. " " .. tostring(err)
  end
  local out = H.curl(H.BASE .. "/own-coroutine")
  T.match(out, "^false .*cannot wait here: this coroutine is not a mongoose task", "the error")
end)

T.test("spawn, thread wait and kill, semaphores", function()
  local thread = mongoose.thread
  local res = {}
  mgr:spawn(function()
    local a = thread.spawn(mgr, function(x) mongoose.sleep(30) return x * 2 end, 21)
    local b = thread.spawn(mgr, function() mongoose.sleep(5000) return "never" end)
    res.wait = { thread.wait(a) }
    res.kill = thread.kill(b)
    res.killed_wait = { thread.wait(b) }
    local sem = thread.semaphore(0)
    mgr:set_timeout(20, function() sem:post(1) end)
    res.sem = { sem:wait(1000) }
    res.sem_timeout = { sem:wait(30) }
    local failing = thread.spawn(mgr, function() mongoose.sleep(1) error("thread broke") end)
    res.fail = { thread.wait(failing) }
  end)
  T.ok(T.poll_until(mgr, function() return res.fail ~= nil end, 5000), "the task ended")
  T.eq(res.wait[1], true, "wait ok")
  T.eq(res.wait[2], 42, "the result")
  T.eq(res.kill, true, "kill")
  T.eq(res.killed_wait[1], nil, "a killed thread was waited for already")
  T.eq(res.sem[1], true, "semaphore taken after post")
  T.eq(res.sem_timeout[2], "timeout", "semaphore timeout")
  T.eq(res.fail[1], false, "a failed thread")
  T.match(res.fail[2], "thread broke", "its error")
end)

T.test("deadlines are lazy but exact: a wait that ended early leaves none that fires for the next", function()
  local thread = require("mongoose.thread")
  local res = {}
  mgr:spawn(function()
    local sem = thread.semaphore(0)
    -- A long wait ended early, then a short one: it times out on time.
    mgr:set_timeout(5, function() sem:post(1) end)
    res.early = { sem:wait(5000) }
    local t0 = millis()
    res.short = { sem:wait(60) }
    res.short_ms = millis() - t0
    -- A short wait ended early, then a longer one: not cut at the first's time.
    mgr:set_timeout(5, function() sem:post(1) end)
    res.early2 = { sem:wait(40) }
    t0 = millis()
    res.long = { sem:wait(250) }
    res.long_ms = millis() - t0
    -- A wait with a deadline ended early, then one without: it is not timed out.
    mgr:set_timeout(5, function() sem:post(1) end)
    sem:wait(30)
    mgr:set_timeout(150, function() sem:post(1) end)
    t0 = millis()
    res.untimed = { sem:wait() }
    res.untimed_ms = millis() - t0
  end)
  T.ok(T.poll_until(mgr, function() return res.untimed ~= nil end, 5000), "the task ended")
  T.eq(res.early[1], true, "the first wait ended by a post")
  T.eq(res.short[2], "timeout", "the short wait timed out")
  T.ok(res.short_ms >= 55 and res.short_ms < 1000, "at its own deadline: " .. res.short_ms .. " ms")
  T.eq(res.early2[1], true, "the second short wait ended by a post")
  T.eq(res.long[2], "timeout", "the longer wait timed out")
  T.ok(res.long_ms >= 245, "not at the earlier wait's deadline: " .. res.long_ms .. " ms")
  T.eq(res.untimed[1], true, "the wait without a deadline ended by its post")
  T.ok(res.untimed_ms >= 140, "not cut by a stale deadline: " .. res.untimed_ms .. " ms")
end)

T.test("a pooled task's deadline moves with it from one manager to another", function()
  local thread = require("mongoose.thread")
  local other = assert(mongoose.new_manager())
  local res = {}
  -- In the other manager: a wait with a deadline that ends early (its
  -- entry stays in that manager's heap, lazily), then the task is pooled.
  other:spawn(function()
    local sem = thread.semaphore(0)
    other:set_timeout(5, function() sem:post(1) end)
    res.first = { sem:wait(100) }
  end)
  T.ok(T.poll_until(other, function() return res.first ~= nil end, 2000), "first wait over")
  -- The same pooled task now waits in this manager, and times out there.
  mgr:spawn(function()
    local sem = thread.semaphore(0)
    local t0 = millis()
    res.second = { sem:wait(50) }
    res.second_ms = millis() - t0
  end)
  T.ok(T.poll_until(mgr, function() return res.second ~= nil end, 2000), "second wait over")
  T.eq(res.second[2], "timeout", "timed out in this manager")
  -- The other manager's heap no longer holds the task: its poll after the
  -- first deadline returns (it would spin on an entry of another heap).
  T.poll_until(other, function() return false end, 150)
  T.eq(other.sched.n, 0, "nothing left in the other manager's heap")
  other:close()
end)

T.run()
