-- The flow of bytes on TCP connections (mongoose.net): the framing
-- helpers (conn:read, conn:read_until) and max_buffer, backpressure
-- (send_queued, pause/resume without spinning) and idle_timeout, which
-- counts writes as traffic and closes a peer that stops reading.
local ffi = require("ffi")
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local millis = mongoose.core.millis
local run_py = P.run

local new_mgr, mgr_test = T.managers({ log_level = "warn" })
local _, quiet_test = T.managers({ log_level = "error" })
local py, pyfile = T.python, P.file
local core = mongoose.core

---------------------------------------------------------------------------
-- Framing: read, read_until, max_buffer
---------------------------------------------------------------------------

mgr_test("framing: read exactly N bytes of a length-prefixed protocol", function(mgr)
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
  local out = P.check(mgr, [[
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
  T.eq(out, "ok\n")
  T.eq(#frames, 4, "frames")
  T.eq(frames[1], "hello")
  T.eq(#frames[2], 3000)
  T.eq(frames[3], "a")
  T.eq(frames[4], "frame with spaces")
end)

mgr_test("framing: read_until for a line protocol (with and without keep)", function(mgr)
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
  local out, rc, err = run_py(mgr, P.READ_TO_EOF .. [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'one\r\ntwo\r\nthr')
time.sleep(0.05)
s.sendall(b'ee\r')
time.sleep(0.05)
s.sendall(b'\nQUIT\r\n')
data = read_to_eof(s)
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
end)

mgr_test("framing: exceeding max_buffer closes the connection", function(mgr)
  local close_err, line_seen = false, nil
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    max_buffer = 1024,
    on_accept = function(conn)
      conn:read_until("\n", function(_, line) line_seen = line end)
    end,
    on_close = function(_, err) close_err = err end,
  }))
  local out = P.check(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
try:
    s.sendall(b'y' * 4096)
    print('eof' if s.recv(100) == b'' else 'data')
except ConnectionError as e:
    print('reset')
]], tostring(l:port()))
  T.ok(out == "eof\n" or out == "reset\n", "peer saw the close: " .. out)
  T.ok(T.poll_until(mgr, function() return close_err ~= false end), "on_close ran")
  T.eq(close_err, "max_buffer exceeded")
  T.eq(line_seen, nil, "no line delivered")
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
  local out = P.check(mgr, [[
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b''.join(b'%04d' % i for i in range(1000)))
print(s.makefile('rb').readline().decode(), end='')
]], tostring(l:port()))
  T.eq(out, "got 1000\n", "the server's reply")
  T.eq(#frames, 1000, "frames delivered")
  T.eq(frames[1], "0000")
  T.eq(frames[1000], "0999")
  T.ok(T.poll_until(mgr, function() return close_err ~= false end), "on_close ran")
  T.eq(close_err, nil, "closed by the peer, not for max_buffer")
  mgr:close()
end)

mgr_test("framing: bytes no reader claims go to on_data, or wait for the next read", function(mgr)
  if jit.os == "Windows" then
    T.skip("expects sends 20 ms apart in reads of their own; under Wine one read can take several")
  end
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
  local out = P.check(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'HELLO\nrest')
for i in range(10):
    time.sleep(0.02)
    s.sendall(b'%d' % i * 200)
print(s.makefile('rb').readline().decode(), end='')
]], tostring(with_on_data:port()))
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
  out = P.check(mgr, [[
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'HEAD\nabc')
time.sleep(0.05)
s.sendall(b'def')
print(s.makefile('rb').readline().decode(), end='')
]], tostring(without:port()))
  T.eq(out, "abcdef\n", "the server's reply")
  T.eq(later, "abcdef", "the later read got the bytes kept for it")
end)

---------------------------------------------------------------------------
-- Backpressure
---------------------------------------------------------------------------

mgr_test("backpressure: send_queued grows while the peer does not read", function(mgr)
  local conn
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    on_accept = function(c) conn = c end,
    max_send_queue = 0, -- no cap: the queue may grow (the cap: test_hostile)
  }))
  local chunk = string.rep("q", 1024 * 1024)
  -- A small receive buffer: what the kernels hold for a peer that does not
  -- read stays well under the 4 MB of the first sample (the glue writes
  -- into the socket as soon as it can, so only the rest is queued).
  local job = T.spawn("timeout 60 " .. py .. " " .. pyfile([[
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(30)
s.connect(('127.0.0.1', int(sys.argv[1])))
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
end)

mgr_test("backpressure: pause() stops on_data without spinning, resume() restarts it", function(mgr)
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
  local cpu0, t0 = T.cpu_ticks(), millis()
  while millis() - t0 < 1000 do
    mgr:poll(50)
  end
  local cpu_ms = (T.cpu_ticks() - cpu0) * 10
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
end)

---------------------------------------------------------------------------
-- idle_timeout
---------------------------------------------------------------------------

quiet_test("raw TCP idle_timeout: a connection the server keeps writing to is not idle", function(mgr)
  local conns = {}
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    idle_timeout = 400,
    on_accept = function(conn) conns[#conns + 1] = conn end,
  }))
  local ticker = mgr:set_interval(100, function()
    for _, conn in ipairs(conns) do
      conn:send("tick\n")
    end
  end)
  -- The client reads for 1.5 s and never writes: 3.75 idle timeouts.
  local out = P.check(mgr, P.HTTP .. [[
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
deadline = time.time() + 1.5
got = b""
while time.time() < deadline:
    chunk = s.recv(4096)
    if not chunk:
        print("closed by the server after", len(got), "bytes")
        sys.exit(0)
    got += chunk
print("open", got.count(b"tick") >= 8)
]], l:port())
  ticker:cancel()
  T.eq(out, "open True\n")
end)

quiet_test("raw TCP idle_timeout: a peer that stops reading what we send is closed", function(mgr)
  local closed_at, accepted_at
  local l = assert(mgr:tcp_listen("tcp://127.0.0.1:0", {
    idle_timeout = 300,
    on_accept = function(conn)
      accepted_at = core.millis()
      local chunk = string.rep("s", 65536)
      for _ = 1, 256 do -- 16 MiB: more than loopback's socket buffers hold
        conn:send(chunk)
      end
    end,
    on_close = function() closed_at = core.millis() end,
  }))
  local job = T.spawn("timeout 20 " .. T.q(T.python) .. " -c " .. T.q([[
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
time.sleep(4)
]]) .. " " .. l:port())
  T.ok(T.poll_until(mgr, function() return closed_at ~= nil end, 5000), "closed while the peer sleeps")
  T.ok(closed_at - accepted_at < 3000, "closed after about idle_timeout: " .. (closed_at - accepted_at) .. " ms")
  T.wait(job, mgr, 10000)
end)

T.run()
