-- Hostile clients against HTTP and TCP (issue 17): readers that stop
-- reading (paused connections, send timeouts, output caps), bodies whose
-- cost could grow with the square of their size, trickled bodies, one
-- client holding many sockets, the descriptor limit, and the Lua heap
-- running out. A good client is answered within 100 ms meanwhile, and the
-- memory held per attacking connection stays under the configured caps.
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local mgr, logs = T.logging_manager({ log_level = "info" })

local rss_kib = T.rss_kib

local routes = {}
local http = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  local fn = routes[req.path]
  if fn then
    return fn(req, res)
  end
  return 200, "hello\n"
end, { stream_threshold = 64 * 1024 * 1024, max_body = 16 * 1024 * 1024 }))
local PORT = http:port()

local function py(code, port, timeout_ms)
  return P.check(mgr, P.HTTP .. P.WORST_GOOD .. code, port or PORT, timeout_ms)
end

-- Starts a Lua server script in its own process (limits of its own: a
-- descriptor limit, a memory limit); the script makes mgr and a listener
-- l, whose port is then written to a file and mgr run until SIGTERM.
-- Returns its pid, port and log file.
local function server_process(script, shell_limits)
  local dir = T.tmpdir()
  local n = #logs + math.random(1, 1e6)
  local path = string.format("%s/server%d.lua", dir, n)
  local port_file = path .. ".port"
  local log = path .. ".log"
  T.write_file(path, "io.stdout:setvbuf('no')\n" .. script .. string.format([[
local f = io.open(%q, "w"); f:write(l:port()); f:close()
mgr:run({ signals = { "TERM" } })
]], port_file))
  local pid_file = path .. ".pid"
  T.spawn(string.format("%s; exec %s %s >%s 2>&1 & echo $! >%s; wait", shell_limits or ":",
                        T.q(T.luajit), T.q(path), T.q(log), T.q(pid_file)))
  local deadline = os.time() + 10
  while not T.read_file(port_file) or not T.read_file(pid_file) do
    if os.time() > deadline then
      error("server did not start: " .. tostring(T.read_file(log)))
    end
    os.execute("sleep 0.05")
  end
  return tonumber(T.read_file(pid_file)), tonumber(T.read_file(port_file)), log
end

-- A server script's start: a manager logging warnings to stdout, at the
-- descriptor limit it was given.
local WARN_MANAGER = [[
local mongoose = require("mongoose")
local mgr = assert(mongoose.new_manager({ raise_fd_limit = false, log_level = "warn",
  log = function(level, msg) io.stdout:write(level, ": ", msg, "\n") end }))
]]

-- Python: holds up to 80 connections open (in held), 1.5 s.
local HOLD_80 = [[
held = []
for i in range(80):
    try:
        held.append(conn(timeout=1))
    except OSError:
        break
time.sleep(1.5)
]]

-- The CPU clock ticks process pid uses in 2 s, from settle seconds on.
local function cpu_in_2s(pid, settle)
  os.execute("sleep " .. settle)
  local t0 = T.cpu_ticks(pid)
  os.execute("sleep 2")
  return T.cpu_ticks(pid) - t0
end

-- Runs write() every ms milliseconds until the response res is closed.
local function feed(res, ms, write)
  local t
  t = mgr:set_interval(ms, function()
    if res.closed then
      t:cancel()
    else
      write()
    end
  end)
end

local function stop(pid)
  os.execute("kill " .. pid .. " 2>/dev/null")
end

---------------------------------------------------------------------------
-- C: a paused connection with output queued costs no CPU
---------------------------------------------------------------------------

T.test("C: the TCP echo example, a client sending 10 MB and never reading: no busy loop", function()
  local port = T.free_port()
  local pid_file = T.tmpdir() .. "/echo.pid"
  T.spawn(string.format("PORT=%d exec %s %s/examples/tcp_echo_server.lua >/dev/null 2>&1 & echo $! >%s; wait",
                        port, T.q(T.luajit), T.q(T.source_dir), T.q(pid_file)))
  T.ok(T.poll_until(mgr, function() return T.read_file(pid_file) ~= nil end, 5000), "started")
  local pid = tonumber(T.read_file(pid_file))
  os.execute("sleep 0.5")
  local job = P.spawn([[
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(3)
sent = 0
chunk = b"x" * 65536
try:
    while sent < 10 * 1024 * 1024:
        sent += s.send(chunk)
except socket.timeout:
    pass
print("sent", sent, flush=True)
time.sleep(4)
]], port)
  local used = cpu_in_2s(pid, 3)
  local out = T.wait(job, nil, 20000)
  stop(pid)
  T.ok(tonumber(out:match("sent (%d+)")) > 4 * 1024 * 1024, "the client got several MiB in: " .. out)
  T.ok(used < 10, "the server spends no CPU while it waits (" .. used .. " ticks in 2 s)")
end)

---------------------------------------------------------------------------
-- D: cost linear in the input
---------------------------------------------------------------------------

T.test("D: an 8 MiB body, and 1 MiB in 1-byte chunks, cost little CPU", function()
  local got = {}
  routes["/up"] = function(req)
    got[#got + 1] = #req:body()
    return 200, "got " .. #req:body()
  end
  local t0 = T.cpu_ticks()
  local out = py([[
body = b"b" * (8 * 1024 * 1024)
s = conn()
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
out("sized", status(read_resp(s)))
chunked = b"1\r\nc\r\n" * (1024 * 1024) + b"0\r\n\r\n"
s = conn()
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
out("chunked", status(read_resp(s)))
]], nil, 60000)
  local used = (T.cpu_ticks() - t0) / 100
  T.eq(out, "sized 200\nchunked 200\n")
  T.eq(got[1], 8 * 1024 * 1024, "the whole sized body")
  T.eq(got[2], 1024 * 1024, "the whole chunked body")
  -- Linear cost is about 0.2 s here (quadratic would be minutes); the
  -- sanitizers make every byte several times dearer.
  local budget = T.sanitized and 3 or 0.6
  T.ok(used < budget, "both bodies cost " .. used .. " s of CPU in this process (Lua included), budget "
       .. budget .. " s")
end)

---------------------------------------------------------------------------
-- E: out of descriptors
---------------------------------------------------------------------------

T.test("E: at the descriptor limit accepts pause (no busy loop, one log line), then resume", function()
  local pid, port, log = server_process(WARN_MANAGER .. [[
-- max_connections above the descriptor limit (the default follows the limit).
local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "hello\n" end,
                                 { max_connections = 1000 }))
]], "ulimit -n 48")
  local out = P.run(mgr, P.HTTP .. HOLD_80 .. [[
print("held", len(held), flush=True)
time.sleep(1.5)
for s in held:
    s.close()
time.sleep(0.5)
ok, secs = good()
print("after", ok, flush=True)
]], port, 30000)
  T.match(out, "held 80", "the clients connected (the kernel's backlog holds them)")
  T.match(out, "after True", "served once descriptors are free")
  local t_log = T.read_file(log) or ""
  local _, lines = t_log:gsub("accept failed", "")
  T.eq(lines, 1, "one log line for the episode:\n" .. t_log)
  T.match(t_log, "max_connections 1000 .* is above the descriptor limit %(48", "warned at listen")
  local t0 = T.cpu_ticks(pid)
  T.ok(t0 ~= nil, "the server is alive")
  stop(pid)
end)

T.test("E: a TCP listener at the descriptor limit logs once and serves again", function()
  local pid, port, log = server_process(WARN_MANAGER .. [[
local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
  max_connections = 1000, on_data = function(conn, view) conn:send(view:string()) end }))
]], "ulimit -n 48")
  local out = P.run(mgr, P.HTTP .. HOLD_80 .. [[
for s in held:
    s.close()
time.sleep(0.5)
s = conn(timeout=2)
s.sendall(b"ping")
print("echo", s.recv(16).decode(), flush=True)
]], port, 30000)
  T.match(out, "echo ping", "served once descriptors are free")
  local t_log = T.read_file(log) or ""
  local _, lines = t_log:gsub("warn: TCP listener 127.0.0.1:%d+: accept failed", "")
  T.eq(lines, 1, "one log line for the episode:\n" .. t_log)
  stop(pid)
end)

T.test("E: CPU while out of descriptors stays low", function()
  local pid, port = server_process([[
local mongoose = require("mongoose")
local mgr = assert(mongoose.new_manager({ raise_fd_limit = false, log_level = "error" }))
local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "hello\n" end,
                                 { max_connections = 1000 }))
]], "ulimit -n 48")
  local job = P.spawn(P.HTTP .. [[
held = [conn(timeout=1) for i in range(80)]
time.sleep(4)
]], port)
  local used = cpu_in_2s(pid, 1)
  T.wait(job, nil, 20000)
  stop(pid)
  T.ok(used < 20, "accepts back off: " .. used .. " ticks of CPU in 2 s")
end)

---------------------------------------------------------------------------
-- F: replies to readers that stopped, bodies that trickle
---------------------------------------------------------------------------

T.test("F: an unfinished chunked reply to a client that stopped reading is closed at send_timeout", function()
  local closed
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    res:on_close(function() closed = mongoose.core.millis() end)
    res:begin(200, { ["Content-Type"] = "text/plain" })
    local chunk = ("z"):rep(64 * 1024)
    feed(res, 10, function()
      res:write(chunk) -- nil, "send queue full" while the peer does not read
    end)
  end, { send_timeout = 500, max_send_queue = 512 * 1024 }))
  local job = P.spawn(P.HTTP .. [[
s = conn()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(4)
]], l:port())
  local t0 = mongoose.core.millis()
  T.ok(T.poll_until(mgr, function() return closed ~= nil end, 5000), "the connection was closed")
  T.ok(closed - t0 < 3000, "within a few seconds (" .. (closed - t0) .. " ms)")
  T.wait(job, mgr)
  l:close()
end)

T.test("F: a streamed body trickled at 2 bytes a second gets 408 (request_timeout, min_body_rate)", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    req:on_body(function() end, function() res:send(200, "done") end)
  end, { stream_threshold = 10, request_timeout = 1000, min_body_rate = 1024, idle_timeout = 60000 }))
  local out = py([[
s = conn()
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
t0 = time.time()
s.settimeout(0.5)
reply = b""
while time.time() - t0 < 6 and not reply:
    try:
        s.send(b"zz")
    except OSError:
        break
    try:
        reply = s.recv(4096)
    except socket.timeout:
        pass
out("status", status(reply), 0.8 < time.time() - t0 < 4)
out("worst", worst_good(port=int(sys.argv[2])))
]], l:port() .. " " .. PORT)
  local r = P.kv(out)
  T.eq(r.status, "408 True", "408 after about request_timeout")
  P.check_worst(r.worst)
  l:close()
end)

---------------------------------------------------------------------------
-- Output caps and per-address limits
---------------------------------------------------------------------------

T.test("output caps: 20 readers that stopped, fed by a write loop, hold at most max_send_queue each", function()
  local cap = 256 * 1024
  local refused, open = 0, 0
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    open = open + 1
    res:begin(200)
    local chunk = ("w"):rep(32 * 1024)
    feed(res, 5, function()
      for _ = 1, 8 do
        local ok, err = res:write(chunk)
        if not ok then
          if err == "send queue full" then
            refused = refused + 1
          end
          break
        end
      end
    end)
  end, { max_send_queue = cap }))
  local before = rss_kib()
  local out = py([[
socks = []
for i in range(20):
    s = conn()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(1.5)
out("worst", worst_good(port=int(sys.argv[2])))
for s in socks:
    s.close()
]], l:port() .. " " .. PORT)
  local grown = rss_kib() - before
  local r = P.kv(out)
  T.eq(open, 20, "every reader got its reply started")
  T.ok(refused > 0, "writes past the cap were refused (" .. refused .. ")")
  if not T.sanitized then -- AddressSanitizer keeps freed memory in quarantine
    T.ok(grown < 20 * 1024, "memory bounded: " .. grown .. " KiB for 20 readers with a 256 KiB cap")
  end
  P.check_worst(r.worst)
  l:close()
end)

T.test("output caps: an echo to a TCP client that never reads stops reading it at the cap", function()
  local cap = 256 * 1024
  local peak, held = 0, false
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    max_send_queue = cap,
    on_data = function(c, view)
      c:send(view:string())
      peak = math.max(peak, c:send_queued())
      local info = mongoose.core.conn_info(mgr.cm, c.id)
      held = held or (info ~= nil and info.reading_held == 1)
    end,
  }))
  local out = py([[
s = socket.create_connection(("127.0.0.1", PORT))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(1)
sent = 0
try:
    while sent < 64 * 1024 * 1024:
        sent += s.send(b"e" * 65536)
except socket.timeout:
    pass
out("sent_mib", sent // (1024 * 1024))
out("worst", worst_good(port=int(sys.argv[2])))
]], l:port() .. " " .. PORT)
  local r = P.kv(out)
  T.ok(tonumber(r.sent_mib) < 64, "the client was pushed back (" .. r.sent_mib .. " MiB in)")
  T.ok(peak <= cap + 64 * 1024, "the server queued at most the cap plus one read (" .. peak .. ")")
  T.ok(held, "reading was held")
  P.check_worst(r.worst)
  l:close()
end)

T.test("max_connections_per_ip: one client's extra sockets get 503, other clients are served", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "hello\n" end,
                                   { max_connections_per_ip = 5 }))
  local out = py([[
held = [conn() for i in range(5)]
extra = [raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2) for i in range(3)]
out("extra", " ".join(status(r) for r in extra))
# Another source address on loopback is another client.
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", PORT))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
out("other", status(read_all(s)))
for h in held:
    h.close()
time.sleep(0.3)
out("again", status(raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")))
]], l:port())
  P.expect_kv(out, {
    { "extra", "503 503 503", "the sixth and later from one address" },
    { "other", "200", "another address is served" },
    { "again", "200", "served again once its sockets closed" },
  })
  l:close()
end)

---------------------------------------------------------------------------
-- G: the Lua heap runs out
---------------------------------------------------------------------------

T.test("G: out of memory in a handler and in the loop: 500 or a close, and the server goes on", function()
  if T.sanitized then
    T.skip("AddressSanitizer cannot run under the memory ulimit this test sets")
  end
  local pid, port, log = server_process([[
local mongoose = require("mongoose")
local mgr = assert(mongoose.new_manager({ log_level = "error",
  log = function(level, msg) io.stdout:write(level, ": ", msg:sub(1, 200), "\n") end }))
local hog
local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
  if req.path == "/hog" then
    hog = {}
    for i = 1, 1e9 do hog[i] = string.rep("x", 4096) .. i end
  end
  return 200, "hello\n"
end))
-- Memory comes back a moment after the hog: from a timer set up front.
mgr:set_interval(300, function() if hog then hog = nil; collectgarbage() end end)
]], "ulimit -v 400000")
  local out = P.run(mgr, P.HTTP .. [[
r = raw(b"GET /hog HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
print("hog", status(r), flush=True)
time.sleep(1)
ok, secs = good()
print("after", ok, flush=True)
]], port, 30000)
  local alive = T.cpu_ticks(pid) ~= nil
  stop(pid)
  T.match(out, "hog [5c][0l]", "the hog request got a 500 or a close: " .. out)
  T.match(out, "after True", "a later request is served")
  T.ok(alive, "the process is alive: " .. tostring(T.read_file(log)))
end)

T.run()
