-- Hardening: the per-listener limits (431, 413, 1009, 503, idle and request
-- timeouts, the per-poll queue cap) and hostile or broken clients
-- (malformed requests, smuggling, slowloris, disconnects at awkward
-- moments, handlers that misbehave). Every client is python3 on loopback,
-- run in the background while the manager in this process polls; every
-- client loop is bounded in count and time. In each test a well-behaved
-- client is served while the hostile one is active.
local T = require("testlib")
local mongoose = require("mongoose")
local core = mongoose.core

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local logs = {}
local mgr = assert(mongoose.new_manager({
  log_level = "debug",
  log = function(level, msg)
    logs[#logs + 1] = { level = level, msg = msg }
  end,
}))

local function find_log(text)
  for _, e in ipairs(logs) do
    if e.msg:find(text, 1, true) then
      return e
    end
  end
  return nil
end

-- Python prelude: PORT is argv[1]. raw() sends bytes on a fresh connection
-- and returns all that comes back until the server closes ("<TIMEOUT>"
-- appended when it does not); good() is a well-behaved GET /hello on its
-- own connection, returning (ok, seconds); read_resp() reads one response
-- (head + Content-Length body) from a keep-alive connection.
local PY_PRELUDE = [[
import socket, sys, time, select, struct, os, base64, threading
socket.setdefaulttimeout(5)
PORT = int(sys.argv[1])
def conn(port=None, timeout=5):
    s = socket.create_connection(("127.0.0.1", port or PORT))
    s.settimeout(timeout)
    return s
def read_all(s, timeout=5):
    s.settimeout(timeout)
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            out += b"<RESET>"
            break
        except socket.timeout:
            out += b"<TIMEOUT>"
            break
        if not d:
            break
        out += d
    s.close()
    return out
def raw(data, port=None, timeout=5):
    s = conn(port)
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass
    return read_all(s, timeout)
def read_resp(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return buf
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return head + b"\r\n\r\n" + rest
def good(port=None):
    t0 = time.time()
    r = raw(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port, 3)
    return r.startswith(b"HTTP/1.1 200") and r.endswith(b"hello\n"), time.time() - t0
def status(r):
    if r.startswith(b"HTTP/1.1 "):
        return r[9:12].decode()
    if r.startswith(b"<TIMEOUT>"):
        return "timeout"
    if r.startswith(b"<RESET>") or r == b"":
        return "closed"
    return "other:" + repr(r[:40])
def out(*a):
    print(*a, flush=True)
]]

local py_seq = 0
-- Runs python code with the port as argv[1] while mgr polls; returns
-- stdout and fails the test when python exits non-zero.
local function py(code, port, timeout_ms)
  py_seq = py_seq + 1
  local path = T.tmpdir() .. "/hostile" .. py_seq .. ".py"
  T.write_file(path, PY_PRELUDE .. code)
  local out, rc, err = T.run_client(mgr, T.q(T.python) .. " " .. T.q(path) .. " " .. tostring(port),
                                    timeout_ms or 30000)
  if rc ~= 0 then
    error("python client failed (exit " .. tostring(rc) .. "):\n" .. out .. err, 2)
  end
  return out
end

-- Parses "key value" lines into a table.
local function kv(out)
  local t = {}
  for k, v in out:gmatch("([%w_%-]+) ([^\n]*)\n") do
    t[k] = v
  end
  return t
end

---------------------------------------------------------------------------
-- The main server (default limits) and its routes
---------------------------------------------------------------------------

local routes = {}
local hits = {}
local deferred = {} -- res objects the /defer route keeps without replying
local function handler(req, res)
  hits[req.path] = (hits[req.path] or 0) + 1
  local fn = routes[req.path]
  if fn then
    return fn(req, res)
  end
  return 404, "no route\n"
end
local main = assert(mgr:http_listen("http://127.0.0.1:0", handler))
local PORT = main:port()

routes["/hello"] = function()
  return 200, "hello\n", { ["Content-Type"] = "text/plain" }
end
routes["/echo"] = function(req)
  return 200, "got " .. #req:body()
end
local BIG = string.rep("0123456789abcdef", 5 * 65536) -- 5 MiB
routes["/big"] = function()
  return 200, BIG
end
routes["/defer"] = function(req, res)
  deferred[#deferred + 1] = { req = req, res = res }
end

-- Open connections of the manager other than the listeners.
local function open_conns()
  return mgr:connection_count()
end

---------------------------------------------------------------------------
-- Limits
---------------------------------------------------------------------------

T.test("limits: the documented defaults are what the header says", function()
  local h = T.read_file(T.source_dir .. "/include/mongoose_ffi.h")
  T.match(h, "#define MGFFI_DEFAULT_MAX_CONNECTIONS 10000")
  T.match(h, "#define MGFFI_DEFAULT_IDLE_TIMEOUT_MS 60000")
  T.match(h, "#define MGFFI_DEFAULT_REQUEST_TIMEOUT_MS 15000")
  T.match(h, "#define MGFFI_DEFAULT_MAX_HEADER_SIZE 16384")
  T.match(h, "#define MGFFI_DEFAULT_MAX_HEADERS 64")
end)

T.test("limits: bad option values raise", function()
  for _, name in ipairs({ "max_connections", "idle_timeout", "request_timeout", "max_header_size",
                          "max_headers" }) do
    T.raises(name, function()
      mgr:http_listen("http://127.0.0.1:0", handler, { [name] = -1 })
    end)
    T.raises(name, function()
      mgr:http_listen("http://127.0.0.1:0", handler, { [name] = "10" })
    end)
  end
end)

T.test("limits: a bad max_body or stream_threshold raises before the socket opens", function()
  -- A port known to be free: that of a listener closed again (given back at once).
  local tmp = assert(mgr:http_listen("http://127.0.0.1:0", handler))
  local port = tmp:port()
  tmp:close()
  mgr:poll(0) -- frees it
  local url = "http://127.0.0.1:" .. port
  local count = mgr:connection_count()
  for _, name in ipairs({ "max_body", "stream_threshold" }) do
    for _, v in ipairs({ "1M", -1, 0.5, 0 / 0, math.huge, 2 ^ 60, true, {} }) do
      local ok, err = pcall(function() mgr:http_listen(url, handler, { [name] = v }) end)
      T.eq(ok, false, name .. " = " .. tostring(v) .. " raises")
      T.match(err, "^[^\n]*test_hostile%.lua:%d+: " .. name .. " must be an integer number of bytes",
              name .. " = " .. tostring(v) .. ": the message, at the caller")
      T.eq(mgr:connection_count(), count, name .. " = " .. tostring(v) .. ": no connection left")
    end
  end
  -- Above the build's receive buffer cap: refused by the C layer, after
  -- the socket opened; it is closed (its port given back) before the error
  -- is raised, and freed at the next poll.
  T.raises("max_body exceeds the build's limit", mgr.http_listen, mgr, url, handler, { max_body = 2 ^ 40 })
  -- Nothing kept the port: listening there works, without a poll.
  local again, err = mgr:http_listen(url, handler, { max_body = 0, stream_threshold = 0 })
  T.ok(again, "the port is free again: " .. tostring(err))
  again:close()
  mgr:poll(0)
  T.eq(mgr:connection_count(), count, "no connection left after a poll")
end)

local small = assert(mgr:http_listen("http://127.0.0.1:0", handler,
                                     { max_header_size = 1024, max_headers = 10, max_body = 1000 }))

T.test("limits: header size and count over the listener's limit get 431 and a close", function()
  local out = py([[
def hdrs(n, size=10):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * size) for i in range(n))
# HTTP/1.0: the connection closes after the response.
for name, data in [
        ("ten", b"GET /hello HTTP/1.0\r\n" + hdrs(10) + b"\r\n"),
        ("eleven", b"GET /hello HTTP/1.0\r\n" + hdrs(11) + b"\r\n"),
        ("big_header", b"GET /hello HTTP/1.0\r\nX-Big: " + b"b" * 1100 + b"\r\n\r\n"),
        ("big_uri", b"GET /" + b"u" * 1100 + b" HTTP/1.0\r\n\r\n"),
        ("endless_head", b"GET /hello HTTP/1.0\r\n" + hdrs(200, 50)),
        ]:
    r = raw(data)
    out(name, status(r), b"Connection: close" in r, r.endswith(b"<TIMEOUT>"))
    ok, _ = good()
    out(name + "_good", ok)
]], small:port())
  local r = kv(out)
  T.eq(r.ten, "200 True False", "10 headers: at the limit")
  T.eq(r.eleven, "431 True False", "11 headers")
  T.eq(r.big_header, "431 True False", "a 1100-byte header")
  T.eq(r.big_uri, "431 True False", "a 1100-byte request line")
  T.eq(r.endless_head, "431 True False", "an unfinished head past the limit")
  for _, k in ipairs({ "ten", "eleven", "big_header", "big_uri", "endless_head" }) do
    T.eq(r[k .. "_good"], "True", "good client after " .. k)
  end
  T.ok(find_log("request rejected with 431"), "rejection logged")
end)

T.test("limits: default header limits (16384 bytes, 64 headers)", function()
  local out = py([[
def hdrs(n):
    return b"".join(b"X-H%d: v\r\n" % i for i in range(n))
for name, data in [
        ("h64", b"GET /hello HTTP/1.1\r\n" + hdrs(64) + b"\r\n"),
        ("h65", b"GET /hello HTTP/1.1\r\n" + hdrs(65) + b"\r\n"),
        ("s16000", b"GET /hello HTTP/1.1\r\nX-Big: " + b"b" * 16000 + b"\r\n\r\n"),
        ("s17000", b"GET /hello HTTP/1.1\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n"),
        ("endless", b"GET /hello HTTP/1.1\r\nX-Big: " + b"b" * 100000),
        ]:
    out(name, status(raw(data)))
    out(name + "_good", good()[0])
]], PORT)
  local r = kv(out)
  T.eq(r.h64, "200", "64 headers")
  T.eq(r.h65, "431", "65 headers")
  T.eq(r.s16000, "200", "a 16000-byte header")
  T.eq(r.s17000, "431", "a 17000-byte header")
  T.eq(r.endless, "431", "100 kB of head without an end")
  for _, k in ipairs({ "h64", "h65", "s16000", "s17000", "endless" }) do
    T.eq(r[k .. "_good"], "True", "good client after " .. k)
  end
end)

T.test("limits: a body over max_body gets 413 and a close (length, chunked, announced)", function()
  local out = py([[
r = raw(b"POST /echo HTTP/1.1\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" + b"a" * 1000)
out("at_limit", status(r), r.endswith(b"got 1000"))
r = raw(b"POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n" + b"a" * 1001)
out("over", status(r), b"Connection: close" in r, r.endswith(b"<TIMEOUT>"))
r = raw(b"POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"a" * 10)
out("announced", status(r), r.endswith(b"<TIMEOUT>"))
body = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
r = raw(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
out("chunked", status(r), r.endswith(b"<TIMEOUT>"))
out("good", good()[0])
]], small:port())
  local r = kv(out)
  T.eq(r.at_limit, "200 True", "a body at the limit")
  T.eq(r.over, "413 True False", "one byte over: 413, Connection: close, closed")
  T.eq(r.announced, "413 False", "a large Content-Length is refused before the body")
  T.eq(r.chunked, "413 False", "a chunked body over the limit")
  T.eq(r.good, "True", "good client")
end)

T.test("limits: the default max_body (8 MiB) refuses a larger announced body", function()
  local out = py([[
r = raw(b"POST /echo HTTP/1.1\r\nContent-Length: 8388609\r\n\r\n" + b"a" * 100)
out("over", status(r))
out("good", good()[0])
]], PORT)
  T.eq(out, "over 413\ngood True\n")
end)

T.test("limits: max_connections: one more gets 503 and the others are not disturbed", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", handler, { max_connections = 3 }))
  local out = py([[
REQ = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
keep = [conn() for _ in range(3)]
for s in keep:
    s.sendall(REQ)
    out("first", status(read_resp(s)))
extra = conn()
try:
    extra.sendall(REQ)
except OSError:
    pass
out("extra", status(read_all(extra, 3)))
for s in keep:
    s.sendall(REQ)
    out("again", status(read_resp(s)))
keep[0].close()
time.sleep(0.3)
s = conn()
s.sendall(REQ)
out("after_one_closed", status(read_resp(s)))
s.close()
for s in keep[1:]:
    s.close()
]], l:port())
  T.eq(out, "first 200\nfirst 200\nfirst 200\nextra 503\nagain 200\nagain 200\nagain 200\n"
       .. "after_one_closed 200\n", "python output")
  l:close()
end)

T.test("limits: idle_timeout closes an idle keep-alive connection, not a busy one", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", handler, { idle_timeout = 500 }))
  local out = py([[
REQ = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
busy = conn()
for i in range(8):           # 1.6 s of requests, 200 ms apart: never idle
    busy.sendall(REQ)
    assert status(read_resp(busy)) == "200"
    time.sleep(0.2)
out("busy_alive", True)
busy.close()
s = conn()
s.sendall(REQ)
read_resp(s)
t0 = time.time()
r = read_all(s, 5)
out("idle_closed", r == b"", round(time.time() - t0, 1))
]], l:port())
  local r = kv(out)
  T.eq(r.busy_alive, "True")
  local closed, secs = r.idle_closed:match("^(%S+) (%S+)$")
  T.eq(closed, "True", "the idle connection was closed without a word")
  T.ok(tonumber(secs) >= 0.4 and tonumber(secs) <= 2.0, "closed after about 500 ms (" .. secs .. " s)")
  l:close()
end)

T.test("limits: request_timeout answers 408 to an unfinished head or body", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", handler, { request_timeout = 1000 }))
  local out = py([[
for name, data in [("head", b"GET /hello HTTP/1.1\r\nHost: x\r\n"),
                   ("body", b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789")]:
    s = conn()
    t0 = time.time()
    s.sendall(data)
    r = read_all(s, 5)
    out(name, status(r), round(time.time() - t0, 1))
out("good", good()[0])
]], l:port())
  local r = kv(out)
  for _, k in ipairs({ "head", "body" }) do
    local st, secs = r[k]:match("^(%S+) (%S+)$")
    T.eq(st, "408", k)
    T.ok(tonumber(secs) >= 0.9 and tonumber(secs) <= 2.5, k .. ": after about 1 s (" .. secs .. ")")
  end
  T.eq(r.good, "True")
  l:close()
end)

T.test("limits: the per-poll queue cap bounds what one poll delivers", function()
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

T.test("limits: a queue cap smaller than one read still lets data through", function()
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

local ws_msgs, ws_closes = {}, {}
local wsl = assert(mgr:ws_listen("http://127.0.0.1:0", {
  path = "/ws",
  max_message = 1000,
  on_message = function(ws, data)
    ws_msgs[#ws_msgs + 1] = #data
    ws:send(data)
  end,
  on_close = function(_, code)
    ws_closes[#ws_closes + 1] = code
  end,
  http = handler,
}))

-- Python helpers for raw WebSocket frames.
local PY_WS = [[
def ws_open(path=b"/ws"):
    s = conn()
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise Exception("no handshake")
        buf += d
    assert buf.startswith(b"HTTP/1.1 101"), buf
    return s
def frame(payload, op=1, fin=True, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        h = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        h = struct.pack("!BBQ", b0, 0x80 | 127, n)
    mask = b"\x01\x02\x03\x04"
    return h + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
def read_frame(s):
    def need(n):
        b = b""
        while len(b) < n:
            d = s.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b
    b0, b1 = need(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", need(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", need(8))[0]
    return b0 & 15, need(n)
def close_code(s):
    try:
        while True:
            op, data = read_frame(s)
            if op == 8:
                return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
    except (EOFError, ConnectionResetError):
        return "eof"
    except socket.timeout:
        return "timeout"
def echo_ok(s, text=b"ping"):
    s.sendall(frame(text))
    return read_frame(s) == (1, text)
]]

T.test("limits: WebSocket max_message: over the limit, absurd and overflowing sizes get 1009", function()
  local out = py(PY_WS .. [[
other = ws_open()
out("other", echo_ok(other))
s = ws_open(); s.sendall(frame(b"x" * 1001)); out("over", close_code(s))
s = ws_open(); s.sendall(frame(b"", length=(1 << 63) - 1)[:10]); out("absurd", close_code(s))
s = ws_open(); s.sendall(frame(b"", length=(1 << 64) - 1)[:10]); out("max64", close_code(s))
# A first fragment, then a continuation announcing 2^64-1 bytes: the sum
# of the two must not wrap around.
s = ws_open(); s.sendall(frame(b"f" * 10, fin=False) + frame(b"", op=0, length=(1 << 64) - 1)[:10])
out("fragment_wrap", close_code(s))
s = ws_open(); s.sendall(frame(b"f" * 600, fin=False) + frame(b"g" * 600, op=0)); out("fragments", close_code(s))
out("other_after", echo_ok(other))
out("good", good()[0])
other.close()
]], wsl:port(), 40000)
  local r = kv(out)
  T.eq(r.other, "True", "a connection under the limit")
  T.eq(r.over, "1009", "1001 bytes")
  T.eq(r.absurd, "1009", "announced 2^63-1 bytes")
  T.eq(r.max64, "1009", "announced 2^64-1 bytes")
  T.eq(r.fragments, "1009", "two fragments of 600")
  T.eq(r.other_after, "True", "the other connection still works")
  T.eq(r.good, "True", "plain HTTP on the same listener")
  T.eq(r.fragment_wrap, "1009", "a fragment then a continuation of 2^64-1 bytes")
end)

---------------------------------------------------------------------------
-- Hostile requests: each gets a 4xx or a close, never a 2xx, never a hang;
-- a good client is served while the hostile connection is open.
---------------------------------------------------------------------------

T.test("hostile: malformed requests, NUL bytes, absurd lengths, bad chunks, smuggling", function()
  hits["/smuggled"] = nil
  local before = hits["/echo"] or 0
  local out = py([[
CASES = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("no_uri", b"GET\r\n\r\n"),
    ("bad_proto", b"GET / HTTP/9.9.9\r\n\r\n"),
    ("binary", b"\x00\x01\x02\xff\xfe\r\n\r\n"),
    ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("header_no_colon", b"GET /echo HTTP/1.1\r\nHost x\r\n\r\n"),
    ("header_empty_name", b"GET /echo HTTP/1.1\r\n: v\r\n\r\n"),
    ("nul_in_header", b"GET /echo HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n"),
    ("nul_in_name", b"GET /echo HTTP/1.1\r\nX-N\x00l: ab\r\n\r\n"),
    ("nul_in_uri", b"GET /ec\x00ho HTTP/1.1\r\n\r\n"),
    ("cl_huge", b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\nabc"),
    ("cl_2_64", b"POST /echo HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\nabc"),
    ("cl_2_64_m1", b"POST /echo HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nabc"),
    ("cl_negative", b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\nabc"),
    ("cl_text", b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\nabc"),
    ("cl_twice", b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
    ("chunk_negative", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_overflow", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk_huge", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n"),
    ("chunk_not_hex", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("te_gzip", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
    ("te_chunked_gzip", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("smuggle_cl_te", b"POST /echo HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("smuggle_te_cl", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n"
                      b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
]
for name, data in CASES:
    h = conn()
    try:
        h.sendall(data)
    except OSError:
        pass
    ok, secs = good()
    r = read_all(h, 3)
    out(name, status(r), ok)
]], PORT, 120000)
  local n, bad = 0, {}
  for name, st, good in out:gmatch("(%S+) (%S+) (%S+)\n") do
    n = n + 1
    if not (st:match("^4%d%d$") or st == "closed") then
      bad[#bad + 1] = name .. " got " .. st
    end
    if good ~= "True" then
      bad[#bad + 1] = name .. ": the good client was not served meanwhile"
    end
  end
  T.eq(n, 24, "cases run")
  T.eq(table.concat(bad, "; "), "", "cases without a 4xx or a close")
  T.eq(hits["/smuggled"], nil, "no smuggled request reached a handler")
  T.eq(hits["/echo"] or 0, before, "no hostile request reached a handler")
end)

T.test("hostile: slowloris: 200 connections at one byte a second are closed at request_timeout", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", handler, { request_timeout = 3000 }))
  local out = py([[
N = 200
REQ = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
socks = [conn() for _ in range(N)]
t0 = time.time()
closed_at, got408 = {}, 0
worst, served, pos = 0.0, 0, 0
while len(closed_at) < N and time.time() - t0 < 10:
    live = [s for s in socks if s not in closed_at]
    r, _, _ = select.select(live, [], [], 0)
    for s in r:
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if d.startswith(b"HTTP/1.1 408"):
            got408 += 1
            d = b""
        if not d:
            closed_at[s] = time.time() - t0
            s.close()
    for s in socks:
        if s not in closed_at:
            try:
                s.send(REQ[pos:pos + 1])
            except OSError:
                pass
    pos += 1
    # Good clients during the attack, each timed.
    tick = time.time()
    while time.time() - tick < 1.0:
        ok, secs = good()
        served += ok
        worst = max(worst, secs)
        time.sleep(0.2)
out("closed", len(closed_at))
out("got408", got408)
out("first_close", round(min(closed_at.values()), 1))
out("last_close", round(max(closed_at.values()), 1))
out("served", served >= 10)
out("worst", round(worst, 3))
]], l:port(), 60000)
  local r = kv(out)
  T.eq(r.closed, "200", "every slow connection was closed")
  T.eq(r.got408, "200", "each with a 408")
  T.ok(tonumber(r.first_close) >= 2.5, "none before the timeout (first " .. r.first_close .. " s)")
  T.ok(tonumber(r.last_close) <= 5.5, "all soon after the 3 s timeout (last " .. r.last_close .. " s)")
  T.eq(r.served, "True", "good clients were served during the attack")
  T.ok(tonumber(r.worst) < 1.0, "good clients served within 1 s (worst " .. r.worst .. " s)")
  l:close()
end)

---------------------------------------------------------------------------
-- Broken clients: disconnects at awkward moments
---------------------------------------------------------------------------

T.test("broken clients: disconnects mid-request, mid-response and mid-frame", function()
  deferred = {}
  local base = open_conns()
  local out = py(PY_WS .. [==[
for data in [b"GET /hello HTT",
             b"GET /hello HTTP/1.1\r\nHost: x\r\n",
             b"POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + b"p" * 300,
             b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc"]:
    s = conn(); s.sendall(data); time.sleep(0.05); s.close()
# mid-response: 5 MiB reply, read a little, then close or reset
for how in ["close", "reset"]:
    s = conn()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100)
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
# a deferred reply whose client leaves
s = conn(); s.sendall(b"GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"); time.sleep(0.2); s.close()
# mid-WebSocket-frame: header only, half a payload, half a header
for part in [frame(b"x" * 100)[:6], frame(b"x" * 100)[:50], frame(b"x" * 300)[:3]]:
    s = ws_open(); s.sendall(part); time.sleep(0.05); s.close()
time.sleep(0.3)
out("good", good()[0])
]==], wsl:port())
  T.eq(out, "good True\n", "python output")
  T.ok(T.poll_until(mgr, function() return open_conns() <= base end, 5000),
       "every connection was closed on the server (" .. open_conns() .. " open, " .. base .. " before)")
  T.eq(#deferred, 1, "the deferred request arrived")
end)

T.test("broken clients: res and ws kept after close fail cleanly", function()
  -- The deferred response of the previous test: its client is gone.
  local d = deferred[1]
  T.ok(d, "a deferred response is kept")
  local ok, err = d.res:send(200, "too late")
  T.eq(ok, nil, "send after close")
  T.eq(err, "connection closed")
  T.raises("response already sent", d.res.send, d.res, 200, "again")
  T.raises("request data is no longer available", d.req.body, d.req)
  T.eq(d.res:close(), true, "close is harmless")
  T.eq(d.res:send_queued(), 0)

  local kept
  local m2 = assert(mongoose.new_manager())
  local l = assert(m2:ws_listen("http://127.0.0.1:0", {
    on_open = function(ws)
      kept = ws
    end,
  }))
  local job = T.spawn(T.q(T.python) .. " -c " .. T.q(PY_PRELUDE .. PY_WS
    .. "s = ws_open(); time.sleep(0.2); s.close()\n") .. " " .. l:port())
  local _, rc, err2 = T.wait(job, m2, 10000)
  T.eq(rc, 0, "python exit status " .. err2)
  T.ok(T.poll_until(m2, function() return kept and kept.closed end, 3000), "ws closed")
  local sent, why = kept:send("after close")
  T.eq(sent, nil, "ws:send after close")
  T.eq(why, "closed")
  T.eq(select(2, kept:ping()), "closed", "ping after close")
  T.eq(kept:close(), true, "close after close")
  T.eq(kept:send_queued(), 0)
  local ok2, werr = m2:ws_send(kept.id, "x")
  T.eq(ok2, nil, "mgr:ws_send to a closed id")
  T.ok(werr, "with an error message")
  m2:close()
end)

---------------------------------------------------------------------------
-- Misbehaving handlers: 500, and the server goes on
---------------------------------------------------------------------------

routes["/h/error"] = function()
  error("boom")
end
routes["/h/error_table"] = function()
  error({ code = 1 })
end
routes["/h/error_nil"] = function()
  error(nil)
end
routes["/h/error_tostring"] = function()
  error(setmetatable({}, { __tostring = function() error("tostring failed too") end }))
end
routes["/h/yield"] = function()
  coroutine.yield(1)
end
routes["/h/table"] = function()
  return { 200 }
end
routes["/h/function"] = function()
  return print
end
routes["/h/string"] = function()
  return "200"
end
routes["/h/nan"] = function()
  return 0 / 0
end
routes["/h/huge"] = function()
  return math.huge
end
routes["/h/status_99"] = function()
  return 99
end
routes["/h/body_table"] = function()
  return 200, { "x" }
end
routes["/h/headers_string"] = function()
  return 200, "x", "Content-Type: text/plain"
end
routes["/h/header_number_name"] = function()
  return 200, "x", { [1] = "y" }
end
routes["/h/deep_recursion"] = function()
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end

T.test("handlers: errors, garbage returns and yields outside a coroutine give 500", function()
  local names = {}
  for path in pairs(routes) do
    local n = path:match("^/h/(.+)$")
    if n then
      names[#names + 1] = n
    end
  end
  table.sort(names)
  local out = py([[
for name in sys.argv[2].split(","):
    r = raw(b"GET /h/" + name.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", None, 5)
    out(name, status(r))
    out(name + "_good", good()[0])
]], PORT .. " " .. table.concat(names, ","), 120000)
  local r, bad = kv(out), {}
  for _, n in ipairs(names) do
    if r[n] ~= "500" then
      bad[#bad + 1] = n .. " got " .. tostring(r[n])
    end
    T.eq(r[n .. "_good"], "True", "good client after " .. n)
  end
  T.eq(table.concat(bad, "; "), "", "handlers not answered 500")
  T.ok(find_log("HTTP handler for GET /h/error failed"), "the error is logged")
end)

T.test("handlers: a yield while poll runs inside a coroutine gives 500; later polls work", function()
  -- LuaJIT lets coroutine.yield pass through xpcall: without a guard the
  -- dispatch stayed suspended, and every later poll raised.
  local streamed = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if req.path == "/chunk-yield" then
      req:on_body(function() coroutine.yield("chunk") end, function() end)
    elseif req.path == "/end-yield" then
      req:on_body(function() end, function() coroutine.yield("end") end)
    else
      return handler(req, res)
    end
  end, { stream_threshold = 100 }))
  local n0 = #logs
  local co = coroutine.create(function()
    return py([[
for path in [b"/h/yield", b"/hello"]:
    out(path.decode().strip("/").replace("/", "_"),
        status(raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")))
s = conn()
for path in [b"/h/yield", b"/hello", b"/h/yield", b"/hello"]:
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    out("keepalive" + path.decode().replace("/", "_"), status(read_resp(s)))
s.close()
port2 = int(sys.argv[2])
for path in [b"/chunk-yield", b"/end-yield"]:
    r = raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 1000, port2)
    out(path.decode().strip("/"), status(r))
out("after", good(port2)[0])
]], PORT .. " " .. streamed:port())
  end)
  local resumed, out = coroutine.resume(co)
  T.eq(coroutine.status(co), "dead", "the coroutine polling the manager ran to its end (resumed: "
       .. tostring(resumed) .. ", " .. tostring(out) .. ")")
  T.ok(resumed, "no error: " .. tostring(out))
  local r = kv(out)
  T.eq(r.h_yield, "500", "a yielding handler: 500")
  T.eq(r.hello, "200", "the next request")
  T.eq(r["keepalive_h_yield"], "500", "keep-alive: 500")
  T.eq(r["keepalive_hello"], "200", "keep-alive: the next request on the connection")
  T.eq(r["chunk-yield"], "500", "a yielding on_chunk: 500")
  T.eq(r["end-yield"], "500", "a yielding on_end: 500")
  T.eq(r.after, "True", "the streaming listener serves the next request")
  local logged = false
  for i = n0 + 1, #logs do
    logged = logged or logs[i].msg:find("HTTP handler for GET /h/yield failed: coroutine.yield()", 1, true) ~= nil
  end
  T.ok(logged, "the yield is logged")
  -- Later polls, inside or outside a coroutine, work.
  T.eq(mgr.dispatching, false, "not left dispatching")
  T.ok(pcall(mgr.poll, mgr, 0), "poll outside a coroutine")
  T.eq(py("out('ok', good()[0])\n", PORT), "ok True\n", "served again")
  streamed:close()
end)

T.test("handlers: an error on a keep-alive connection, then more requests on it", function()
  local out = py([[
s = conn()
for path in [b"/h/error", b"/hello", b"/h/yield", b"/hello"]:
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    out(status(read_resp(s)))
s.close()
]], PORT)
  T.eq(out, "500\n200\n500\n200\n")
end)

T.run()
