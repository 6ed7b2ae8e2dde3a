-- The per-listener HTTP limits, enforced by the C glue before Lua sees a
-- request (docs/http.md, "Limits"): head size and header count (431),
-- max_body (413), max_connections (503), idle_timeout, request_timeout
-- and a stalled streamed body (408), the WebSocket max_message (1009);
-- their defaults, and option values that are refused. Every client is on
-- loopback, bounded in count and time; a well-behaved client is served
-- while each limit fires.
local T = require("testlib")
local P = require("testpy")
local H = require("testhttp").server({ log_level = "debug" })
local mongoose = require("mongoose")
local core = mongoose.core
local mgr, routes, PORT, handler = H.mgr, H.routes, H.PORT, H.handler
local curl, parse_response, find_log, kv = H.curl, T.parse_response, H.find_log, P.kv
local py = H.pyc

routes["/echo"] = function(req)
  return 200, "got " .. #req:body()
end

---------------------------------------------------------------------------
-- Defaults and option checks
---------------------------------------------------------------------------

T.test("limits: the defaults are what the library reports (docs/http.md)", function()
  if jit.os == "Windows" then
    T.skip("Windows has no descriptor limit: max_connections defaults to 10000 (docs/windows.md)")
  end
  local L = core.LIMITS
  T.eq(L.idle_timeout.http_default, 60000, "idle_timeout")
  T.eq(L.request_timeout.http_default, 15000, "request_timeout")
  T.eq(L.max_header_size.http_default, 16384, "max_header_size")
  T.eq(L.max_headers.http_default, 64, "max_headers")
  T.eq(L.max_body.http_default, 8 * 1024 * 1024, "max_body")
  T.eq(L.send_timeout.http_default, 60000, "send_timeout")
  T.eq(L.max_send_queue.http_default, 4 * 1024 * 1024, "max_send_queue")
  T.eq(L.max_connections_per_ip.http_default, 0, "max_connections_per_ip: off")
  T.eq(L.idle_timeout.raw_default, 0, "raw TCP: no idle timeout")
  -- max_connections follows the descriptor limit (raised by new_manager).
  local fds = core.fd_limit(false)
  T.eq(L.max_connections.http_default, fds > 128 and fds - 64 or math.floor(fds / 2),
       "max_connections from the descriptor limit " .. fds)
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
      T.match(err, "^[^\n]*test_http_limits%.lua:%d+: " .. name .. " must be an integer number of bytes",
              name .. " = " .. tostring(v) .. ": the message, at the caller")
      T.eq(mgr:connection_count(), count, name .. " = " .. tostring(v) .. ": no connection left")
    end
  end
  -- Bodies are not held in Mongoose's receive buffer: any size up to 2^53
  -- is a valid limit (0: none).
  local big = assert(mgr:http_listen(url, handler, { max_body = 2 ^ 40 }))
  big:close()
  -- Nothing kept the port: listening there works, without a poll.
  local again, err = mgr:http_listen(url, handler, { max_body = 0, stream_threshold = 0 })
  T.ok(again, "the port is free again: " .. tostring(err))
  again:close()
  mgr:poll(0)
  T.eq(mgr:connection_count(), count, "no connection left after a poll")
end)

---------------------------------------------------------------------------
-- Request head: max_header_size, max_headers (431)
---------------------------------------------------------------------------

local small = assert(mgr:http_listen("http://127.0.0.1:0", handler,
                                     { max_header_size = 1024, max_headers = 10, max_body = 1000 }))

-- Sends each request of cases (Python: a list of (name, bytes), after
-- defs) to port on a connection of its own, a well-behaved client after
-- each; checks what show (a Python expression of the reply r) printed for
-- each name against want ({ name, result, what }), and that the good
-- client was served after each.
local function each_head(port, defs, cases, show, want)
  local r = kv(py(defs .. "\nfor name, data in [" .. cases .. [[]:
    r = raw(data)
    out(name, ]] .. show .. [[)
    out(name + "_good", good()[0])
]], port))
  for _, w in ipairs(want) do
    T.eq(r[w[1]], w[2], w[3])
    T.eq(r[w[1] .. "_good"], "True", "good client after " .. w[1])
  end
end

T.test("limits: header size and count over the listener's limit get 431 and a close", function()
  -- HTTP/1.0: the connection closes after the response.
  each_head(small:port(), [[
def hdrs(n, size=10):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * size) for i in range(n))]], [[
        ("ten", b"GET /hello HTTP/1.0\r\n" + hdrs(10) + b"\r\n"),
        ("eleven", b"GET /hello HTTP/1.0\r\n" + hdrs(11) + b"\r\n"),
        ("big_header", b"GET /hello HTTP/1.0\r\nX-Big: " + b"b" * 1100 + b"\r\n\r\n"),
        ("big_uri", b"GET /" + b"u" * 1100 + b" HTTP/1.0\r\n\r\n"),
        ("endless_head", b"GET /hello HTTP/1.0\r\n" + hdrs(200, 50)),
        ]], [[status(r), b"Connection: close" in r, r.endswith(b"<TIMEOUT>")]], {
    { "ten", "200 True False", "10 headers: at the limit" },
    { "eleven", "431 True False", "11 headers" },
    { "big_header", "431 True False", "a 1100-byte header" },
    { "big_uri", "431 True False", "a 1100-byte request line" },
    { "endless_head", "431 True False", "an unfinished head past the limit" },
  })
  T.ok(find_log("request rejected with 431"), "rejection logged")
end)

T.test("limits: default header limits (16384 bytes, 64 headers)", function()
  each_head(PORT, [[
def hdrs(n):
    return b"".join(b"X-H%d: v\r\n" % i for i in range(n))]], [[
        ("h64", b"GET /hello HTTP/1.1\r\nHost: x\r\n" + hdrs(63) + b"\r\n"),
        ("h65", b"GET /hello HTTP/1.1\r\nHost: x\r\n" + hdrs(64) + b"\r\n"),
        ("s16000", b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 16000 + b"\r\n\r\n"),
        ("s17000", b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n"),
        ("endless", b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000),
        ]], "status(r)", {
    { "h64", "200", "64 headers" },
    { "h65", "431", "65 headers" },
    { "s16000", "200", "a 16000-byte header" },
    { "s17000", "431", "a 17000-byte header" },
    { "endless", "431", "100 kB of head without an end" },
  })
end)

---------------------------------------------------------------------------
-- Request body: max_body (413)
---------------------------------------------------------------------------

local limited = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
  return 200, "got " .. #req:body()
end, { max_body = 1000 }))
local LBASE = "http://127.0.0.1:" .. limited:port()

T.test("a body over opts.max_body gets 413", function()
  T.write_file(T.tmpdir() .. "/b2000", string.rep("x", 2000))
  T.write_file(T.tmpdir() .. "/b1000", string.rep("y", 1000))
  local function post_file(name)
    local path = T.tmpdir() .. "/" .. name
    return parse_response(curl("-i --data-binary @" .. T.q(path) .. " " .. T.q(LBASE .. "/")))
  end
  local r = post_file("b2000")
  T.eq(r.status, 413, "status over the limit")
  T.eq(r.headers["connection"], "close", "the connection closes")
  local r2 = post_file("b1000")
  T.eq(r2.status, 200, "status at the limit")
  T.eq(r2.body, "got 1000", "body at the limit")
  local out = H.raw([[b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n" + b"z" * 100]], limited:port())
  T.match(out, "^HTTP/1%.1 413", "announced size over the limit, body not sent")
end)

T.test("a chunked request body over opts.max_body gets 413", function()
  local path = T.tmpdir() .. "/chunked-big.bin"
  T.write_file(path, string.rep("c", 5000))
  local r = parse_response(curl("-i -H 'Transfer-Encoding: chunked' --data-binary @" .. T.q(path) .. " "
                                .. T.q(LBASE .. "/")))
  T.eq(r and r.status, 413, "status")
end)

T.test("limits: a body over max_body gets 413 and a close (length, chunked, announced)", function()
  local out = py([[
r = raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" + b"a" * 1000)
out("at_limit", status(r), r.endswith(b"got 1000"))
r = raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + b"a" * 1001)
out("over", status(r), b"Connection: close" in r, r.endswith(b"<TIMEOUT>"))
r = raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" + b"a" * 10)
out("announced", status(r), r.endswith(b"<TIMEOUT>"))
body = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
r = raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
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
r = raw(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8388609\r\n\r\n" + b"a" * 100)
out("over", status(r))
out("good", good()[0])
]], PORT)
  T.eq(out, "over 413\ngood True\n")
end)

---------------------------------------------------------------------------
-- Connections and time: max_connections (503), idle_timeout, request_timeout (408)
---------------------------------------------------------------------------

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
                   ("body", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")]:
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

T.test("a streamed upload that stops arriving gets 408 after idle_timeout", function()
  local m = assert(mongoose.new_manager({ log_level = "error" }))
  local closed_seen = false
  local l = assert(m:http_listen("http://127.0.0.1:0", function(req, res)
    req:on_body(function() end, function() res:send(200, "complete") end)
    res:on_close(function() closed_seen = true end)
  end, { stream_threshold = 100, idle_timeout = 300, request_timeout = 60000 }))
  local good = assert(m:http_listen("http://127.0.0.1:0", function() return 200, "fine" end))
  local out = P.check(m, P.HTTP .. [[
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"z" * 500)
t0 = time.time()
reply = read_reply(s)
waited = time.time() - t0
print(status_line(reply), 0.2 < waited < 3)
]], l:port())
  T.eq(out, "HTTP/1.1 408 Request Timeout True\n")
  T.ok(T.poll_until(m, function() return closed_seen end, 2000), "the handler saw the close")
  local body = T.run_client(m, "curl -sS -m 5 http://127.0.0.1:" .. good:port() .. "/")
  T.eq(body, "fine", "the server goes on")
  m:close()
end)

---------------------------------------------------------------------------
-- WebSocket messages: max_message (1009)
---------------------------------------------------------------------------

local wsl = H.ws_echo(1000)
T.test("limits: WebSocket max_message: over the limit, absurd and overflowing sizes get 1009", function()
  local out = py(P.WS .. [[
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

T.test("a fragmented message of exactly max_message, its last frame split across reads", function()
  -- Mongoose counts one opcode byte in front of the fragments it holds;
  -- the limit check must not: 400 + 400 + 200 bytes fit a 1000-byte limit
  -- however the frames are cut into reads.
  local got = {}
  local m = assert(mongoose.new_manager())
  local port = assert(m:ws_listen("http://127.0.0.1:0", {
    path = "/ws",
    max_message = 1000,
    on_message = function(ws, data, is_binary)
      got[#got + 1] = #data
      ws:send(data, is_binary and "binary" or "text")
    end,
  })):port()
  local path = T.tmpdir() .. "/split_frames.py"
  T.write_file(path, [[
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
def frame(first, payload):  # masked with a zero key: payload as is
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126, n >> 8, n & 255])
    return bytes([first]) + size + b"\0\0\0\0", payload
for first, payload in ((0x01, b"a" * 400), (0x00, b"b" * 400)):
    h, p = frame(first, payload)
    s.sendall(h + p)
    time.sleep(0.05)
h, p = frame(0x80, b"c" * 200)
s.sendall(h)
time.sleep(0.2)
s.sendall(p)
reply = b""
while len(reply) < 4:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
op = reply[0] & 15 if reply else -1
n = (reply[2] << 8 | reply[3]) if len(reply) >= 4 and reply[1] & 127 == 126 else -1
print("opcode", op, "length", n, flush=True)
]])
  local out, rc = T.run_client(m, T.q(T.python) .. " " .. T.q(path) .. " " .. port, 15000)
  T.eq(rc, 0, "python exit")
  T.eq(out, "opcode 1 length 1000\n", "the whole message echoed, not a 1009 close (opcode 8)")
  T.eq(got[1], 1000, "on_message saw 1000 bytes")
  m:close()
end)

T.run()
