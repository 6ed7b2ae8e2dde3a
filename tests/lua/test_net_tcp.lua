-- TCP servers and clients of mongoose.net against real peers on loopback:
-- python3 sockets, nc and socat, and the project's own client. Covers echo
-- over IPv4 and IPv6, a 10 MB transfer checked end to end, 500 concurrent
-- clients, a peer vanishing mid-transfer, half-close, a refused connection
-- and argument errors. Framing, backpressure and idle timeouts are in
-- test_net_tcp_flow.lua.
local ffi = require("ffi")
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local millis = mongoose.core.millis
local run_py = P.run

local _, mgr_test = T.managers({ log_level = "warn" })
-- An echo server: every byte received goes back. Counts accepts/closes.
local function echo_server(mgr, url)
  local stats = { accepted = 0, closed = 0, max_open = 0, errors = {}, remotes = {} }
  local l
  l = assert(mgr:tcp_listen(url or "tcp://127.0.0.1:0", {
    on_accept = function(conn)
      stats.accepted = stats.accepted + 1
      stats.remotes[#stats.remotes + 1] = conn:remote_addr()
      local open = l:connection_count()
      if open > stats.max_open then
        stats.max_open = open
      end
    end,
    on_data = function(conn, view)
      conn:send(view:string())
    end,
    on_error = function(conn, err)
      stats.errors[#stats.errors + 1] = err
    end,
    on_close = function()
      stats.closed = stats.closed + 1
    end,
  }))
  return l, stats
end

-- Adler-32 of bytes at ptr, continuing from (a, b); zlib.adler32 compatible.
local function adler_update(a, b, ptr, len)
  local p = ffi.cast("const uint8_t *", ptr)
  local i = 0
  while i < len do
    local stop = math.min(len, i + 3800)
    for j = i, stop - 1 do
      a = a + p[j]
      b = b + a
    end
    a, b = a % 65521, b % 65521
    i = stop
  end
  return a, b
end

local ECHO_CLIENT = [[
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
msg = sys.argv[3].encode()
s.sendall(msg)
got = b''
while len(got) < len(msg):
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(got.decode(), s.getsockname()[1])
s.close()
]]

---------------------------------------------------------------------------
-- Echo over IPv4 and IPv6
---------------------------------------------------------------------------

mgr_test("python client, IPv4 echo", function(mgr)
  local l, stats = echo_server(mgr)
  local port = l:port()
  T.ok(port > 0, "bound port")
  T.match(l:local_addr(), "^127%.0%.0%.1:%d+$")
  local out = P.check(mgr, ECHO_CLIENT, "127.0.0.1 " .. port .. " hello-tcp")
  local text, client_port = out:match("^(%S+) (%d+)")
  T.eq(text, "hello-tcp", "echo")
  T.ok(T.poll_until(mgr, function() return stats.closed == 1 end), "on_close after the peer left")
  T.eq(stats.accepted, 1, "accepts")
  T.eq(stats.remotes[1], "127.0.0.1:" .. client_port, "remote_addr is the peer")
  T.eq(l:connection_count(), 0, "no connection left")
end)

mgr_test("python client, IPv6 echo alongside IPv4", function(mgr)
  local l4 = echo_server(mgr, "tcp://127.0.0.1:0")
  local l6, stats6 = echo_server(mgr, "tcp://[::1]:0")
  T.match(l6:local_addr(), "^%[::1%]:%d+$")
  local out = P.check(mgr, ECHO_CLIENT, "::1 " .. l6:port() .. " over-v6")
  T.match(out, "^over%-v6 %d+")
  out = run_py(mgr, ECHO_CLIENT, "127.0.0.1 " .. l4:port() .. " over-v4")
  T.match(out, "^over%-v4 %d+")
  T.match(stats6.remotes[1], "^%[::1%]:%d+$", "IPv6 remote_addr")
  -- The project's own client over IPv6 too.
  local got = {}
  assert(mgr:tcp_connect("tcp://[::1]:" .. l6:port(), {
    on_connect = function(c) c:send("own-v6") end,
    on_data = function(c, v)
      got[#got + 1] = v:string()
      if table.concat(got) == "own-v6" then
        c:close()
      end
    end,
  }))
  T.ok(T.poll_until(mgr, function() return table.concat(got) == "own-v6" end), "own client over IPv6")
end)

mgr_test("nc and socat clients", function(mgr)
  local l, stats = echo_server(mgr)
  local port = l:port()
  -- nc -N: shut the socket down after stdin's EOF; -q 2: then wait at most 2 s.
  local out, rc, err = T.run_client(mgr, "printf 'ping from nc\\n' | timeout 10 nc -N -q 2 127.0.0.1 "
                                    .. port)
  T.eq(rc, 0, "nc exit: " .. err)
  T.eq(out, "ping from nc\n", "nc echo")
  out, rc, err = T.run_client(mgr, "printf 'ping from socat' | timeout 10 socat -t 2 - TCP:127.0.0.1:"
                              .. port)
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "ping from socat", "socat echo")
  local _, rc6 = T.run_client(mgr, "printf 'v6 socat' | timeout 10 socat -t 2 - TCP6:[::1]:" .. port)
  T.ok(rc6 ~= 0, "the IPv4 listener does not answer on ::1")
  T.ok(T.poll_until(mgr, function() return stats.closed == 2 end), "both closed")
end)

mgr_test("own client against own server", function(mgr)
  local server_closed, client_closed = false, false
  local connected = false
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      conn:read_until("\n", function(c, line)
        c:send("hello, " .. line .. "\n")
      end)
    end,
    on_close = function() server_closed = true end,
  }))
  local reply = ""
  local conn = assert(mgr:tcp_connect("tcp://127.0.0.1:" .. l:port(), {
    on_connect = function(c)
      connected = true
      T.eq(c:remote_addr(), "127.0.0.1:" .. l:port(), "client's remote_addr")
      c:send("lua\n")
    end,
    on_data = function(c, view)
      T.eq(type(view.len), "number", "view.len")
      T.ok(view.ptr ~= nil, "view.ptr")
      reply = reply .. view:string()
      if reply:find("\n") then
        c:close()
      end
    end,
    on_close = function(c, err)
      client_closed = true
      T.eq(err, nil, "no error on a clean close")
    end,
  }))
  T.ok(T.poll_until(mgr, function() return client_closed and server_closed end), "both ends closed")
  T.ok(connected, "on_connect ran")
  T.eq(reply, "hello, lua\n")
  T.eq(conn.closed, true, "conn.closed")
  local ok, err = conn:send("late")
  T.eq(ok, nil, "send after close")
  T.eq(err, "closed")
end)

---------------------------------------------------------------------------
-- Volume
---------------------------------------------------------------------------

-- A TCP echo server on mgr keeping the Adler-32 (st.a, st.b) and the
-- count (st.n) of the bytes it got; returns it and st.
local function adler_echo_server(mgr)
  local st = { a = 1, b = 0, n = 0 }
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(conn, view)
      st.a, st.b = adler_update(st.a, st.b, view.ptr, view.len)
      st.n = st.n + view.len
      conn:send(view:string())
    end,
  }))
  return l, st
end

mgr_test("10 MB from python, echoed, checksums match end to end", function(mgr)
  local l, srv = adler_echo_server(mgr)
  local out = P.check(mgr, [[
import hashlib, random, socket, sys, threading, zlib
size = 10 * 1024 * 1024
data = random.Random(7).randbytes(size)
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=30)
t = threading.Thread(target=s.sendall, args=(data,))
t.start()
h = hashlib.sha256()
a = zlib.adler32(b'')
n = 0
while n < size:
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    h.update(chunk)
    a = zlib.adler32(chunk, a)
    n += len(chunk)
t.join()
s.close()
print(n, hashlib.sha256(data).hexdigest() == h.hexdigest(), zlib.adler32(data), a)
]], tostring(l:port()), 60000)
  local n, same, sent_adler, recv_adler = out:match("^(%d+) (%a+) (%d+) (%d+)")
  T.eq(tonumber(n), 10 * 1024 * 1024, "bytes echoed back")
  T.eq(same, "True", "sha256 of sent == sha256 of received")
  T.eq(srv.n, 10 * 1024 * 1024, "bytes the server saw")
  local server_adler = srv.b * 65536 + srv.a
  T.eq(server_adler, tonumber(sent_adler), "adler32 at the server == adler32 of what python sent")
  T.eq(tonumber(recv_adler), tonumber(sent_adler), "adler32 of the echo")
end)

mgr_test("10 MB between own client and own server, send_queued pacing", function(mgr)
  local size, chunk = 10 * 1024 * 1024, 64 * 1024
  local l, srv = adler_echo_server(mgr)
  local cli_a, cli_b, cli_n = 1, 0, 0
  local connected = false
  local conn = assert(mgr:tcp_connect("tcp://127.0.0.1:" .. l:port(), {
    on_connect = function() connected = true end,
    on_data = function(_, view)
      cli_a, cli_b = adler_update(cli_a, cli_b, view.ptr, view.len)
      cli_n = cli_n + view.len
    end,
  }))
  T.ok(T.poll_until(mgr, function() return connected end), "connected")
  -- Deterministic payload: chunk k is filled with byte (k * 37) % 256.
  local sent, k, snt_a, snt_b = 0, 0, 1, 0
  local deadline = millis() + 30000
  while cli_n < size and millis() < deadline do
    while sent < size and conn:send_queued() < 1024 * 1024 do
      local piece = string.rep(string.char((k * 37) % 256), chunk)
      snt_a, snt_b = adler_update(snt_a, snt_b, piece, #piece)
      assert(conn:send(piece))
      sent, k = sent + chunk, k + 1
    end
    mgr:poll(5)
  end
  T.eq(cli_n, size, "bytes back at the client")
  T.eq(srv.n, size, "bytes at the server")
  T.eq(srv.b * 65536 + srv.a, snt_b * 65536 + snt_a, "server checksum")
  T.eq(cli_b * 65536 + cli_a, snt_b * 65536 + snt_a, "client checksum")
  conn:close()
end)

mgr_test("500 concurrent python clients", function(mgr)
  local l, stats = echo_server(mgr)
  local out = P.check(mgr, [[
import asyncio, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
async def main():
    conns = []
    for i in range(n):
        conns.append(await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), 10))
    for i, (r, w) in enumerate(conns):
        w.write(b'client %d\n' % i)
    async def check(i, r):
        line = await asyncio.wait_for(r.readexactly(len(b'client %d\n' % i)), 30)
        return line == b'client %d\n' % i
    results = await asyncio.gather(*(check(i, r) for i, (r, w) in enumerate(conns)))
    print(sum(results))
    for r, w in conns:
        w.close()
asyncio.run(main())
]], l:port() .. " 500", 60000)
  T.eq(tonumber(out), 500, "echoes received")
  T.eq(stats.accepted, 500, "accepted")
  T.ok(stats.max_open >= 500, "500 open at once (max " .. stats.max_open .. ")")
  T.ok(T.poll_until(mgr, function() return stats.closed == 500 end, 10000), "all closed: " .. stats.closed)
  T.eq(l:connection_count(), 0, "none left")
end)

mgr_test("a peer that disconnects mid-transfer does not hurt the others", function(mgr)
  local closes, big = {}, string.rep("z", 8 * 1024 * 1024)
  local uploads_done = 0
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      conn:read_until("\n", function(c, cmd)
        c.state.cmd = cmd
        if cmd == "download" then
          c:send(big)
        elseif cmd == "upload" then
          c:read(4 * 1024 * 1024, function() uploads_done = uploads_done + 1 end)
        elseif cmd == "echo" then
          c:read_until("\n", function(c2, line) c2:send(line .. "\n") end)
        end
      end)
    end,
    on_close = function(conn, err)
      closes[#closes + 1] = { cmd = conn.state.cmd, err = err }
    end,
  }))
  local port = tostring(l:port())
  local _, rc, err = run_py(mgr, [[
import socket, struct, sys, time
port = int(sys.argv[1])
# A downloader that reads 100 KB of 8 MB, then resets the connection.
d = socket.create_connection(('127.0.0.1', port), timeout=10)
d.sendall(b'download\n')
n = 0
while n < 100000:
    n += len(d.recv(65536))
# An uploader that sends 1 MB of the 4 MB the server waits for.
u = socket.create_connection(('127.0.0.1', port), timeout=10)
u.sendall(b'upload\n' + b'u' * (1 << 20))
time.sleep(0.2)
for s in (d, u):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
]], port)
  T.eq(rc, 0, "python exit: " .. err)
  T.ok(T.poll_until(mgr, function() return #closes == 2 end), "both aborted connections closed")
  T.eq(uploads_done, 0, "the short upload never completed")
  -- The server keeps serving: a fresh client gets its echo.
  local out
  out, rc, err = run_py(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'echo\nstill here\n')
print(s.makefile('rb').readline().decode(), end='')
]], port)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "still here\n")
end)

---------------------------------------------------------------------------
-- Closing, refusing, argument errors
---------------------------------------------------------------------------

mgr_test("half-close: shutdown() sends EOF, the peer can still send", function(mgr)
  local received, closed = "", false
  local shut_ok
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      conn:send("last words\n")
      shut_ok = conn:shutdown()
    end,
    on_data = function(_, view) received = received .. view:string() end,
    on_close = function() closed = true end,
  }))
  local out, rc, err = run_py(mgr, P.READ_TO_EOF .. [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
data = read_to_eof(s)
s.sendall(b'reply after EOF\n')
s.shutdown(socket.SHUT_WR)
s.settimeout(5)
rest = s.recv(4096)
print(repr(data), repr(rest))
]], tostring(l:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(shut_ok, true, "shutdown() returned true")
  T.eq(out, "b'last words\\n' b''\n", "peer read the data, then EOF")
  T.ok(T.poll_until(mgr, function() return received == "reply after EOF\n" end), "server got: " .. received)
  T.ok(T.poll_until(mgr, function() return closed end), "closed once both sides are done")
end)

mgr_test("refused connection: on_error mentions refused, then on_close", function(mgr)
  -- A port that was just free: bind, learn it, close.
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {}))
  local port = l:port()
  l:close()
  mgr:poll(10)
  local events = {}
  local conn = assert(mgr:tcp_connect("tcp://127.0.0.1:" .. port, {
    on_connect = function() events[#events + 1] = "connect" end,
    on_error = function(_, e) events[#events + 1] = "error:" .. e end,
    on_close = function(_, e) events[#events + 1] = "close:" .. tostring(e) end,
  }))
  T.ok(T.poll_until(mgr, function() return #events >= 2 end), "events: " .. table.concat(events, ", "))
  T.match(events[1], "^error:.*refused", "first on_error")
  T.match(events[2], "^close:.*refused", "then on_close with the error")
  T.eq(#events, 2)
  T.eq(conn.closed, true)
  -- The manager is fine afterwards.
  local l2 = echo_server(mgr)
  local out = run_py(mgr, ECHO_CLIENT, "127.0.0.1 " .. l2:port() .. " after-refused")
  T.match(out, "^after%-refused ")
end)

mgr_test("argument errors", function(mgr)
  T.raises("url must be a string", function() mgr:tcp_listen(nil) end)
  T.raises("on_data must be a function", function() mgr:tcp_listen("tcp://127.0.0.1:0", { on_data = 1 }) end)
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {}))
  local taken, err = mgr:tcp_listen("tcp://127.0.0.1:" .. l:port(), {})
  T.eq(taken, nil, "port in use")
  T.ok(type(err) == "string" and #err > 0, "an error message")
  local c = assert(mgr:tcp_connect("tcp://127.0.0.1:" .. l:port(), {}))
  T.raises("data must be a string", function() c:send(42) end)
  T.raises("non%-negative integer", function() c:read(-1, print) end)
  T.raises("delimiter must be a non%-empty string", function() c:read_until("", print) end)
  for _, bad in ipairs({ "1M", 0, -5, 2.5 }) do
    T.raises("^[^:]*test_net_tcp%.lua:%d+: max_buffer must be a positive integer", function()
      mgr:tcp_listen("tcp://127.0.0.1:0", { max_buffer = bad })
    end)
    T.raises("^[^:]*test_net_tcp%.lua:%d+: max_buffer must be a positive integer", function()
      mgr:tcp_connect("tcp://127.0.0.1:" .. l:port(), { max_buffer = bad })
    end)
  end
end)

T.test("a URL of the wrong scheme is nil, err naming the schemes", function()
  local mgr = assert(mongoose.new_manager())
  for _, case in ipairs({
    { "tcp_listen", "udp://127.0.0.1:0", "tcp_listen on udp://",
      "tcp_listen takes .*tcp://.* URLs, not udp://127%.0%.0%.1:0" },
    { "tcp_connect", "http://127.0.0.1:80", "tcp_connect to http://", "tcp_connect takes" },
    { "udp_listen", "tcp://127.0.0.1:0", "udp_listen on tcp://", "udp_listen takes udp:// URLs" },
    { "ws_connect", "http://127.0.0.1:80/", "ws_connect to http://", "ws:// or wss://" },
  }) do
    local method, url, what, pattern = unpack(case)
    local got, err = mgr[method](mgr, url)
    T.eq(got, nil, what)
    T.match(err, pattern)
  end
  T.eq(mgr:connection_count(), 0, "nothing left open")
  mgr:close()
end)

T.run()
