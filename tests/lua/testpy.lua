-- Python 3 peers for the Lua tests: scripts written to the test's temp
-- folder and run in the background while a manager polls (T.run_client),
-- plus the preludes that raw-socket HTTP and WebSocket clients start with.
local T = require("testlib")

local _M = {}

-- Raw HTTP over sockets. PORT is argv[1]. conn() opens a connection;
-- read_all(s) reads until the server closes ("<TIMEOUT>" appended when it
-- does not, "<RESET>" on a reset); raw(data) sends bytes on a fresh
-- connection and returns read_all of it; read_resp(s) reads one response
-- (head + Content-Length body) from a keep-alive connection; good() is a
-- well-behaved GET /hello on its own connection, returning (ok, seconds);
-- status(r) names what raw() got ("200", "timeout", "closed", ...);
-- read_reply(s, done) reads until the peer closes or resets or
-- done(reply) holds; send_read(req, done, timeout) sends req on a fresh
-- connection and read_reply()s it; status_line(reply) is its first line; out() prints
-- and flushes.
_M.HTTP = [[
import socket, sys, time, select, struct, os, base64, threading, http.client, zlib
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
def read_reply(s, done=lambda reply: False):
    reply = b""
    while not done(reply):
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        reply += chunk
    return reply
def send_read(req, done=lambda reply: False, timeout=5):
    s = conn(timeout=timeout)
    s.sendall(req)
    return read_reply(s, done)
def head_then_hello(path, *headers):
    # HEAD path, then GET /hello on the same http.client connection (in
    # sync only if the HEAD reply had no body): prints the status (and the
    # headers named) and the body of each.
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("HEAD", path)
    r = c.getresponse()
    print(r.status, *[r.getheader(h) for h in headers], repr(r.read()))
    c.request("GET", "/hello")
    r = c.getresponse()
    print(r.status, repr(r.read()))
def post_file(c, path, name):
    # POSTs the file name to path on http.client connection c; prints the
    # status and body of the reply, then the file's length and Adler-32.
    data = open(name, "rb").read()
    c.request("POST", path, body=data)
    r = c.getresponse()
    print(r.status, r.read().decode())
    print(len(data), zlib.adler32(data))
def status_line(reply):
    return reply.split(b"\r\n")[0].decode()
def out(*a):
    print(*a, flush=True)
]]

-- After HTTP: worst_good(n=5, port=None), the slowest of n good() clients
-- one after another, in seconds (99 when one failed).
_M.WORST_GOOD = [[
def worst_good(n=5, port=None):
    worst = 0
    for _ in range(n):
        ok, secs = good(port)
        if not ok:
            return 99
        worst = max(worst, secs)
    return worst
]]

-- Checks worst (what worst_good() printed) for good clients answered
-- within 100 ms; 500 ms in a sanitizer build, whose server is several
-- times slower (a starved client waits seconds or times out).
local WORST_MS = T.sanitized and 500 or 100
function _M.check_worst(worst)
  T.ok(tonumber(worst) < WORST_MS / 1000, "good clients answered within " .. WORST_MS .. " ms (worst "
       .. worst .. " s)")
end

-- Raw WebSocket frames, after HTTP: ws_open(path) does the handshake on a
-- fresh connection; frame() builds a masked frame (any announced length);
-- read_frame(s) returns (opcode, payload), read_raw_frame(s) (first byte,
-- payload); close_code(s) waits for the
-- server's close frame; echo_ok(s) checks one text echo.
_M.WS = [[
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
def read_raw_frame(s):
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
    return b0, need(n)
def read_frame(s):
    b0, payload = read_raw_frame(s)
    return b0 & 15, payload
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

-- Python's websockets package (asyncio): URL is argv[1]; recv() and
-- connect() have timeouts; closed_code(ws) waits for the server's close
-- and returns its (code, reason); nothing_more(ws, got, nothing) prints
-- what comes within 0.3 s, or nothing. A script defines async main() and ends
-- with MAIN, which bounds the whole run.
_M.WEBSOCKETS = [[
import asyncio, sys
import websockets
URL = sys.argv[1]

def out(*a):
    print(*a, flush=True)

async def recv(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout)

def connect(url=None, **kw):
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url or URL, **kw)

async def nothing_more(ws, got, nothing, timeout=0.3):
    # Prints got and what ws receives within timeout, or else nothing.
    try:
        out(got, await asyncio.wait_for(ws.recv(), timeout))
    except asyncio.TimeoutError:
        out(nothing)

async def closed_code(ws, timeout=5):
    # Waits until the server closes; returns (code, reason) it sent.
    try:
        while True:
            m = await recv(ws, timeout)
            out("unexpected message", repr(m)[:80])
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, ws.close_reason
]]
_M.MAIN = "\nasyncio.run(asyncio.wait_for(main(), 20))\n"

-- read_to_eof(s): every byte the peer sends on socket s until it closes.
_M.READ_TO_EOF = [[
def read_to_eof(s):
    data = b''
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
]]

-- Writes a python script into the test's temp folder; returns its path.
local seq = 0
function _M.file(code)
  seq = seq + 1
  local path = string.format("%s/peer%d.py", T.tmpdir(), seq)
  T.write_file(path, code)
  return path
end

-- Starts code (a whole script) with args (already quoted) in the
-- background; returns its job (T.wait).
function _M.spawn(code, args)
  return T.spawn(T.q(T.python) .. " " .. T.q(_M.file(code)) .. " " .. tostring(args or ""))
end

-- Runs code (a whole script) with args (already quoted) while mgr polls,
-- bounded by `timeout 60`. Returns stdout, exit status, stderr.
function _M.run(mgr, code, args, timeout_ms)
  return T.run_client(mgr, "timeout 60 " .. T.q(T.python) .. " " .. T.q(_M.file(code)) .. " "
                      .. tostring(args or ""), timeout_ms or 30000)
end

-- Like run, but fails (at the caller) when python exits non-zero; returns
-- stdout.
function _M.check(mgr, code, args, timeout_ms)
  local out, rc, err = _M.run(mgr, code, args, timeout_ms)
  if rc ~= 0 then
    error("python failed (exit " .. tostring(rc) .. "):\n" .. out .. err, 2)
  end
  return out
end

-- Parses "key value" lines into a table (keys of letters, digits, _ and
-- -, or matching key_pattern).
function _M.kv(out, key_pattern)
  local t = {}
  for k, v in out:gmatch("(" .. (key_pattern or "[%w_%-]+") .. ") ([^\n]*)\n") do
    t[k] = v
  end
  return t
end

-- Checks the "key value" lines of out (P.kv): r[key] == value (what) for
-- each { key, value, what } of checks; returns the parsed lines.
function _M.expect_kv(out, checks)
  local r = _M.kv(out)
  for _, c in ipairs(checks) do
    T.eq(r[c[1]], c[2], c[3])
  end
  return r
end

return _M
