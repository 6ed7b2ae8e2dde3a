-- TCP servers and clients of mongoose.net against real peers on loopback:
-- python3 sockets, nc and socat, and the project's own client. Covers echo
-- over IPv4 and IPv6, a 10 MB transfer checked end to end, 500 concurrent
-- clients, a peer vanishing mid-transfer, the framing helpers and
-- max_buffer, backpressure (send_queued, pause/resume without spinning),
-- half-close and a refused connection.
local ffi = require("ffi")
local T = require("testlib")
local mongoose = require("mongoose")

local millis = mongoose.core.millis
local py = T.python

-- Writes a python script into the test's temp folder; returns its path.
local script_seq = 0
local function pyfile(code)
  script_seq = script_seq + 1
  local path = string.format("%s/tcp_peer_%d.py", T.tmpdir(), script_seq)
  T.write_file(path, code)
  return path
end

-- Runs a python peer in the background while mgr polls.
local function run_py(mgr, code, args, timeout_ms)
  return T.run_client(mgr, "timeout 60 " .. py .. " " .. pyfile(code) .. " " .. (args or ""), timeout_ms)
end

local function new_mgr()
  return assert(mongoose.new_manager({ log_level = "warn" }))
end

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

local function cpu_ticks()
  local stat = assert(T.read_file("/proc/self/stat"))
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for f in rest:gmatch("%S+") do
    fields[#fields + 1] = f
  end
  -- fields[1] is field 3 (state): utime is field 14, stime field 15
  return tonumber(fields[12]) + tonumber(fields[13])
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

T.test("python client, IPv4 echo", function()
  local mgr = new_mgr()
  local l, stats = echo_server(mgr)
  local port = l:port()
  T.ok(port > 0, "bound port")
  T.match(l:local_addr(), "^127%.0%.0%.1:%d+$")
  local out, rc, err = run_py(mgr, ECHO_CLIENT, "127.0.0.1 " .. port .. " hello-tcp")
  T.eq(rc, 0, "python exit: " .. err)
  local text, client_port = out:match("^(%S+) (%d+)")
  T.eq(text, "hello-tcp", "echo")
  T.ok(T.poll_until(mgr, function() return stats.closed == 1 end), "on_close after the peer left")
  T.eq(stats.accepted, 1, "accepts")
  T.eq(stats.remotes[1], "127.0.0.1:" .. client_port, "remote_addr is the peer")
  T.eq(l:connection_count(), 0, "no connection left")
  mgr:close()
end)

T.test("python client, IPv6 echo alongside IPv4", function()
  local mgr = new_mgr()
  local l4 = echo_server(mgr, "tcp://127.0.0.1:0")
  local l6, stats6 = echo_server(mgr, "tcp://[::1]:0")
  T.match(l6:local_addr(), "^%[::1%]:%d+$")
  local out, rc, err = run_py(mgr, ECHO_CLIENT, "::1 " .. l6:port() .. " over-v6")
  T.eq(rc, 0, "python exit: " .. err)
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
  mgr:close()
end)

T.test("nc and socat clients", function()
  local mgr = new_mgr()
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
  mgr:close()
end)

T.test("own client against own server", function()
  local mgr = new_mgr()
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
  mgr:close()
end)

T.test("10 MB from python, echoed, checksums match end to end", function()
  local mgr = new_mgr()
  local a, b, total = 1, 0, 0
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(conn, view)
      a, b = adler_update(a, b, view.ptr, view.len)
      total = total + view.len
      conn:send(view:string())
    end,
  }))
  local out, rc, err = run_py(mgr, [[
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
  T.eq(rc, 0, "python exit: " .. err)
  local n, same, sent_adler, recv_adler = out:match("^(%d+) (%a+) (%d+) (%d+)")
  T.eq(tonumber(n), 10 * 1024 * 1024, "bytes echoed back")
  T.eq(same, "True", "sha256 of sent == sha256 of received")
  T.eq(total, 10 * 1024 * 1024, "bytes the server saw")
  local server_adler = b * 65536 + a
  T.eq(server_adler, tonumber(sent_adler), "adler32 at the server == adler32 of what python sent")
  T.eq(tonumber(recv_adler), tonumber(sent_adler), "adler32 of the echo")
  mgr:close()
end)

T.test("10 MB between own client and own server, send_queued pacing", function()
  local mgr = new_mgr()
  local size, chunk = 10 * 1024 * 1024, 64 * 1024
  local srv_a, srv_b, srv_n = 1, 0, 0
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(conn, view)
      srv_a, srv_b = adler_update(srv_a, srv_b, view.ptr, view.len)
      srv_n = srv_n + view.len
      conn:send(view:string())
    end,
  }))
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
  T.eq(srv_n, size, "bytes at the server")
  T.eq(srv_b * 65536 + srv_a, snt_b * 65536 + snt_a, "server checksum")
  T.eq(cli_b * 65536 + cli_a, snt_b * 65536 + snt_a, "client checksum")
  conn:close()
  mgr:close()
end)

T.test("500 concurrent python clients", function()
  local mgr = new_mgr()
  local l, stats = echo_server(mgr)
  local out, rc, err = run_py(mgr, [[
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
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(tonumber(out), 500, "echoes received")
  T.eq(stats.accepted, 500, "accepted")
  T.ok(stats.max_open >= 500, "500 open at once (max " .. stats.max_open .. ")")
  T.ok(T.poll_until(mgr, function() return stats.closed == 500 end, 10000), "all closed: " .. stats.closed)
  T.eq(l:connection_count(), 0, "none left")
  mgr:close()
end)

T.test("a peer that disconnects mid-transfer does not hurt the others", function()
  local mgr = new_mgr()
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
  mgr:close()
end)

T.test("framing: read exactly N bytes of a length-prefixed protocol", function()
  local mgr = new_mgr()
  local frames = {}
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      local function next_frame()
        conn:read(4, function(c, header)
          local len = tonumber(header)
          if len == 0 then
            c:close()
            return
          end
          c:read(len, function(c2, body)
            frames[#frames + 1] = body
            c2:send(string.format("%04d", #body) .. body:upper())
            next_frame()
          end)
        end)
      end
      next_frame()
    end,
  }))
  local out, rc, err = run_py(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
msgs = [b'hello', b'x' * 3000, b'a', b'frame with spaces']
wire = b''.join(b'%04d' % len(m) + m for m in msgs) + b'0000'
# Byte by byte for the first 12 bytes, then everything in one write.
for i in range(12):
    s.sendall(wire[i:i + 1])
    time.sleep(0.01)
s.sendall(wire[12:])
f = s.makefile('rb')
for m in msgs:
    n = int(f.read(4))
    assert f.read(n) == m.upper(), m
assert f.read() == b''
print('ok')
]], tostring(l:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "ok\n")
  T.eq(#frames, 4, "frames")
  T.eq(frames[1], "hello")
  T.eq(#frames[2], 3000)
  T.eq(frames[3], "a")
  T.eq(frames[4], "frame with spaces")
  mgr:close()
end)

T.test("framing: read_until for a line protocol (with and without keep)", function()
  local mgr = new_mgr()
  local lines = {}
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      local function next_line()
        conn:read_until("\r\n", function(c, line)
          lines[#lines + 1] = line
          if line:gsub("\r\n$", "") == "QUIT" then
            c:send("BYE\r\n")
            c:close()
            return
          end
          c:send("echo:" .. line .. "\r\n")
          next_line()
        end, #lines % 2 == 1)
      end
      next_line()
    end,
  }))
  local out, rc, err = run_py(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'one\r\ntwo\r\nthr')
time.sleep(0.05)
s.sendall(b'ee\r')
time.sleep(0.05)
s.sendall(b'\nQUIT\r\n')
data = b''
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(repr(data))
]], tostring(l:port()))
  T.eq(rc, 0, "python exit: " .. err)
  -- Lines 2 and 4 are read with keep = true: the delimiter stays.
  T.eq(out, [[b'echo:one\r\necho:two\r\n\r\necho:three\r\nBYE\r\n']] .. "\n")
  T.eq(lines[1], "one")
  T.eq(lines[2], "two\r\n")
  T.eq(lines[3], "three")
  T.eq(lines[4], "QUIT\r\n")
  T.eq(#lines, 4)
  mgr:close()
end)

T.test("framing: exceeding max_buffer closes the connection", function()
  local mgr = new_mgr()
  local close_err, line_seen = false, nil
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    max_buffer = 1024,
    on_accept = function(conn)
      conn:read_until("\n", function(_, line) line_seen = line end)
    end,
    on_close = function(_, err) close_err = err end,
  }))
  local out, rc, err = run_py(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
try:
    s.sendall(b'y' * 4096)
    print('eof' if s.recv(100) == b'' else 'data')
except ConnectionError as e:
    print('reset')
]], tostring(l:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.ok(out == "eof\n" or out == "reset\n", "peer saw the close: " .. out)
  T.ok(T.poll_until(mgr, function() return close_err ~= false end), "on_close ran")
  T.eq(close_err, "max_buffer exceeded")
  T.eq(line_seen, nil, "no line delivered")
  mgr:close()
end)

T.test("framing: max_buffer counts what the readers leave, not the whole read", function()
  -- 4000 bytes of 4-byte frames arrive in reads larger than max_buffer;
  -- the readers take them all, so nothing is left over the limit.
  local mgr = new_mgr()
  local frames, close_err = {}, false
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    max_buffer = 1024,
    on_accept = function(conn)
      local function next_frame()
        conn:read(4, function(c, frame)
          frames[#frames + 1] = frame
          if #frames == 1000 then
            c:send("got 1000\n")
          end
          next_frame()
        end)
      end
      next_frame()
    end,
    on_close = function(_, err) close_err = err end,
  }))
  local out, rc, err = run_py(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b''.join(b'%04d' % i for i in range(1000)))
print(s.makefile('rb').readline().decode(), end='')
]], tostring(l:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "got 1000\n", "the server's reply")
  T.eq(#frames, 1000, "frames delivered")
  T.eq(frames[1], "0000")
  T.eq(frames[1000], "0999")
  T.ok(T.poll_until(mgr, function() return close_err ~= false end), "on_close ran")
  T.eq(close_err, nil, "closed by the peer, not for max_buffer")
  mgr:close()
end)

T.test("framing: bytes no reader claims go to on_data, or wait for the next read", function()
  local mgr = new_mgr()
  -- With on_data: a header line is read, then everything else is on_data's
  -- (more than max_buffer in all: nothing piles up).
  local header, data, via_ptr, close_err = nil, {}, {}, false
  local with_on_data = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    max_buffer = 1024,
    on_accept = function(conn)
      conn:read_until("\n", function(_, line) header = line end)
    end,
    on_data = function(conn, view)
      data[#data + 1] = view:string()
      via_ptr[#via_ptr + 1] = ffi.string(view.ptr, view.len)
      if #table.concat(data) == 4 + 10 * 200 then
        conn:send("done\n")
      end
    end,
    on_close = function(_, err) close_err = err end,
  }))
  local out, rc, err = run_py(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'HELLO\nrest')
for i in range(10):
    time.sleep(0.02)
    s.sendall(b'%d' % i * 200)
print(s.makefile('rb').readline().decode(), end='')
]], tostring(with_on_data:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "done\n", "the server's reply")
  T.eq(header, "HELLO", "the reader's line")
  T.eq(data[1], "rest", "what followed the line in the same read, in on_data")
  local expect = "rest"
  for i = 0, 9 do
    expect = expect .. tostring(i):rep(200)
  end
  T.eq(table.concat(data), expect, "everything after the line reached on_data")
  T.eq(table.concat(via_ptr), expect, "view.ptr and view.len of those calls")
  T.ok(T.poll_until(mgr, function() return close_err ~= false end), "on_close ran")
  T.eq(close_err, nil, "not closed for max_buffer")

  -- Without on_data: the bytes wait, across reads, for the next read call.
  local later
  local without = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(conn)
      conn:read_until("\n", function(c)
        mgr:set_timeout(300, function()
          c:read(6, function(c2, bytes)
            later = bytes
            c2:send(bytes .. "\n")
          end)
        end)
      end)
    end,
  }))
  out, rc, err = run_py(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'HEAD\nabc')
time.sleep(0.05)
s.sendall(b'def')
print(s.makefile('rb').readline().decode(), end='')
]], tostring(without:port()))
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "abcdef\n", "the server's reply")
  T.eq(later, "abcdef", "the later read got the bytes kept for it")
  mgr:close()
end)

T.test("backpressure: send_queued grows while the peer does not read", function()
  local mgr = new_mgr()
  local conn
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(c) conn = c end,
  }))
  local chunk = string.rep("q", 1024 * 1024)
  local job = T.spawn("timeout 60 " .. py .. " " .. pyfile([[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=30)
time.sleep(float(sys.argv[2]))
n = 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    n += len(b)
print(n)
]]) .. " " .. l:port() .. " 1.5")
  T.ok(T.poll_until(mgr, function() return conn ~= nil end), "accepted")
  local samples = {}
  for i = 1, 16 do
    assert(conn:send(chunk))
    mgr:poll(10)
    if i % 4 == 0 then
      samples[#samples + 1] = conn:send_queued()
    end
  end
  T.ok(samples[1] > 0, "queued after 4 MB: " .. samples[1])
  T.ok(samples[4] > samples[1] + 8 * 1024 * 1024, "queue grows: " .. table.concat(samples, " "))
  T.ok(samples[4] <= 16 * 1024 * 1024, "never more than was sent")
  -- The peer starts reading: the queue drains, then the server closes.
  T.ok(T.poll_until(mgr, function() return conn:send_queued() == 0 end, 20000), "queue drained")
  conn:close()
  local out, rc, err = T.wait(job, mgr, 30000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(tonumber(out), 16 * 1024 * 1024, "peer got everything")
  mgr:close()
end)

T.test("backpressure: pause() stops on_data without spinning, resume() restarts it", function()
  local mgr = new_mgr()
  local total, conn, paused = 0, nil, false
  local size = 16 * 1024 * 1024
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_data = function(c, view)
      total = total + view.len
      if not paused and total >= 256 * 1024 then
        conn, paused = c, true
        assert(c:pause())
      end
    end,
  }))
  local job = T.spawn("timeout 60 " .. py .. " " .. pyfile([[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=30)
block = b'p' * 65536
for _ in range(int(sys.argv[2]) // 65536):
    s.sendall(block)
s.close()
print('sent')
]]) .. " " .. l:port() .. " " .. size)
  T.ok(T.poll_until(mgr, function() return paused end, 10000), "paused")
  T.eq(conn.paused, true, "conn.paused")
  mgr:poll(20)
  local at_pause = total
  local cpu0, t0 = cpu_ticks(), millis()
  while millis() - t0 < 1000 do
    mgr:poll(50)
  end
  local cpu_ms = (cpu_ticks() - cpu0) * 10
  local wall_ms = millis() - t0
  T.eq(total, at_pause, "no on_data while paused")
  T.ok(at_pause < size, "the peer was still sending")
  T.eq(T.read_file(job.base .. ".rc"), nil, "the peer is blocked, not finished")
  T.ok(cpu_ms < 0.3 * wall_ms, string.format("CPU while paused: %d ms of %d ms", cpu_ms, wall_ms))
  if os.getenv("VERBOSE") then
    print(string.format("  CPU while paused: %d ms of %d ms, %d bytes in", cpu_ms, wall_ms, at_pause))
  end
  assert(conn:resume())
  T.eq(conn.paused, false)
  T.ok(T.poll_until(mgr, function() return total == size end, 30000), "all data after resume: " .. total)
  local out, rc, err = T.wait(job, mgr, 30000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "sent\n")
  mgr:close()
end)

T.test("half-close: shutdown() sends EOF, the peer can still send", function()
  local mgr = new_mgr()
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
  local out, rc, err = run_py(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
data = b''
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
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
  mgr:close()
end)

T.test("refused connection: on_error mentions refused, then on_close", function()
  local mgr = new_mgr()
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
  mgr:close()
end)

T.test("argument errors", function()
  local mgr = new_mgr()
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
    T.raises("^[^:]*test_tcp%.lua:%d+: max_buffer must be a positive integer", function()
      mgr:tcp_listen("tcp://127.0.0.1:0", { max_buffer = bad })
    end)
    T.raises("^[^:]*test_tcp%.lua:%d+: max_buffer must be a positive integer", function()
      mgr:tcp_connect("tcp://127.0.0.1:" .. l:port(), { max_buffer = bad })
    end)
  end
  mgr:close()
end)

T.test("a URL of the wrong scheme is nil, err naming the schemes", function()
  local mgr = assert(mongoose.new_manager())
  local l, err = mgr:tcp_listen("udp://127.0.0.1:0")
  T.eq(l, nil, "tcp_listen on udp://")
  T.match(err, "tcp_listen takes .*tcp://.* URLs, not udp://127%.0%.0%.1:0")
  local c, err2 = mgr:tcp_connect("http://127.0.0.1:80")
  T.eq(c, nil, "tcp_connect to http://")
  T.match(err2, "tcp_connect takes")
  local u, err3 = mgr:udp_listen("tcp://127.0.0.1:0")
  T.eq(u, nil, "udp_listen on tcp://")
  T.match(err3, "udp_listen takes udp:// URLs")
  local w, err4 = mgr:ws_connect("http://127.0.0.1:80/")
  T.eq(w, nil, "ws_connect to http://")
  T.match(err4, "ws:// or wss://")
  T.eq(mgr:connection_count(), 0, "nothing left open")
  mgr:close()
end)

T.run()
