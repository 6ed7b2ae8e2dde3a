-- WebSocket servers and clients. The servers run in this process (on
-- 127.0.0.1, port 0); the clients are Python's websockets package (Debian
-- python3-websockets) run in the background while the manager polls, and
-- the library's own client (mgr:ws_connect) against its own server.
--
-- Handlers only record what they see; assertions run afterwards, outside
-- the handlers (an error inside a handler is only logged).
local T = require("testlib")
local mongoose = require("mongoose")
local core = require("mongoose.core")

local function have_websockets()
  local _, rc = T.run_client(nil, T.q(T.python) .. " -c 'import websockets'")
  return rc == 0
end

if not have_websockets() then
  -- Debian: python3-websockets (10.4 in bookworm).
  os.execute("command -v apt-get >/dev/null && [ \"$(id -u)\" = 0 ] && "
             .. "timeout 300 apt-get install -y python3-websockets >/dev/null 2>&1")
  assert(have_websockets(), "python3 websockets is missing (apt-get install python3-websockets)")
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- Every Python client starts with this: URL is argv[1] (the server's
-- ws:// URL), recv() and connect() have timeouts, and the whole script is
-- bounded by asyncio.wait_for in PY_MAIN.
local PY_PRELUDE = [[
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

local PY_MAIN = "\nasyncio.run(asyncio.wait_for(main(), 20))\n"

local py_seq = 0

-- Runs Python code (defining async main()) against url while mgr polls.
-- Returns stdout; fails when the script exits non-zero.
local function py(mgr, url, code)
  py_seq = py_seq + 1
  local path = string.format("%s/client%d.py", T.tmpdir(), py_seq)
  T.write_file(path, PY_PRELUDE .. code .. PY_MAIN)
  local out, rc, err = T.run_client(mgr, T.q(T.python) .. " " .. T.q(path) .. " " .. T.q(url), 30000)
  if rc ~= 0 then
    error("python client failed (exit " .. tostring(rc) .. "):\n" .. out .. err, 2)
  end
  return out
end

-- A manager with a WebSocket server on 127.0.0.1:0; returns mgr,
-- listener and the ws:// URL of opts.path (default "/ws").
local function ws_server(opts)
  local mgr = assert(mongoose.new_manager())
  opts.path = opts.path or "/ws"
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", opts))
  return mgr, l, "ws://127.0.0.1:" .. l:port() .. opts.path
end

local function echo(ws, data, is_binary)
  ws:send(data, is_binary and "binary" or "text")
end

-- 256 bytes 0..255 repeated: n must be a multiple of 256.
local function byte_pattern(n)
  local t = {}
  for i = 0, 255 do
    t[#t + 1] = string.char(i)
  end
  return table.concat(t):rep(n / 256)
end

---------------------------------------------------------------------------
-- Python clients against the server
---------------------------------------------------------------------------

T.test("text and binary echo", function()
  local seen = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data, is_binary)
      seen[#seen + 1] = (is_binary and "binary:" or "text:") .. data
      echo(ws, data, is_binary)
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send("hello, server")
        m = await recv(ws)
        out("text", type(m).__name__, m)
        await ws.send(b"\x00\x01\xfe\xff")
        m = await recv(ws)
        out("binary", type(m).__name__, m.hex())
        await ws.send("héllo ✓")
        m = await recv(ws)
        out("utf8", m == "héllo ✓")
]])
  T.eq(out, "text str hello, server\nbinary bytes 0001feff\nutf8 True\n", "python output")
  T.eq(#seen, 3, "messages seen by the server")
  T.eq(seen[1], "text:hello, server")
  T.eq(seen[2], "binary:\0\1\254\255")
  T.eq(seen[3], "text:héllo ✓")
  mgr:close()
end)

T.test("a 1 MB message both ways, intact", function()
  local N = 1048576
  local expect_bin = byte_pattern(N)
  local expect_text = ("abcdefghijklmnop"):rep(N / 16)
  local got = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data, is_binary)
      got[#got + 1] = { data = data, binary = is_binary }
      echo(ws, data, is_binary)
    end,
  })
  local out = py(mgr, url, [[
async def main():
    N = 1048576
    async with connect(max_size=4 * N) as ws:
        data = bytes(range(256)) * (N // 256)
        await ws.send(data)
        m = await recv(ws, 10)
        out("binary", type(m).__name__, len(m), m == data)
        text = "abcdefghijklmnop" * (N // 16)
        await ws.send(text)
        m = await recv(ws, 10)
        out("text", type(m).__name__, len(m), m == text)
]])
  T.eq(out, "binary bytes 1048576 True\ntext str 1048576 True\n", "python output")
  T.eq(#got, 2, "messages seen by the server")
  T.eq(got[1].binary, true, "first is binary")
  T.eq(#got[1].data, N, "binary size at the server")
  T.ok(got[1].data == expect_bin, "binary message intact at the server")
  T.eq(got[2].binary, false, "second is text")
  T.eq(#got[2].data, N, "text size at the server")
  T.ok(got[2].data == expect_text, "text message intact at the server")
  mgr:close()
end)

T.test("a fragmented message arrives whole", function()
  local got = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data, is_binary)
      got[#got + 1] = data
      echo(ws, data, is_binary)
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send(["frag1-", "frag2-", "x" * 3000, "-frag4"])
        m = await recv(ws)
        out("text", len(m), m[:12], m[-6:])
        await ws.send([b"\x01\x02", b"\x03", b"\x04" * 200])
        m = await recv(ws)
        out("binary", type(m).__name__, len(m), m[:3].hex())
]])
  T.eq(out, "text 3018 frag1-frag2- -frag4\nbinary bytes 203 010203\n", "python output")
  T.eq(#got, 2, "one on_message per fragmented message")
  T.eq(got[1], "frag1-frag2-" .. ("x"):rep(3000) .. "-frag4")
  T.eq(got[2], "\1\2\3" .. ("\4"):rep(200))
  mgr:close()
end)

T.test("ping from the client gets a pong; on_control sees it", function()
  local controls = {}
  local mgr, _, url = ws_server({
    on_message = echo,
    on_control = function(ws, kind, data)
      controls[#controls + 1] = kind .. ":" .. data
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        waiter = await ws.ping(b"are-you-there")
        await asyncio.wait_for(waiter, 5)
        out("pong received")
        await ws.send("after ping")
        out(await recv(ws))
]])
  T.eq(out, "pong received\nafter ping\n", "python output")
  T.ok(#controls >= 1, "on_control called")
  T.eq(controls[1], "ping:are-you-there", "first control frame")
  mgr:close()
end)

T.test("close from the client with a code and a reason", function()
  local closes = {}
  local mgr, _, url = ws_server({
    on_message = echo,
    on_close = function(ws, code, reason)
      closes[#closes + 1] = { code = code, reason = reason }
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send("hi")
        await recv(ws)
        await ws.close(4000, "client is done")
        out("closed", ws.close_code)
]])
  T.eq(out, "closed 4000\n", "python sees its close echoed")
  T.ok(T.poll_until(mgr, function() return #closes > 0 end, 3000), "server on_close ran")
  T.eq(#closes, 1, "on_close runs once")
  T.eq(closes[1].code, 4000, "close code at the server")
  T.eq(closes[1].reason, "client is done", "close reason at the server")
  mgr:close()
end)

T.test("close from the server with a code and a reason", function()
  local closes = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data)
      if data == "close me" then
        T.ok(ws:close(4002, "bye"))
      else
        ws:send(data)
      end
    end,
    on_close = function(ws, code, reason)
      closes[#closes + 1] = { code = code, reason = reason }
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send("close me")
        code, reason = await closed_code(ws)
        out("closed", code, repr(reason))
]])
  T.eq(out, "closed 4002 'bye'\n", "python sees the server's close")
  T.ok(T.poll_until(mgr, function() return #closes > 0 end, 3000), "server on_close ran")
  T.eq(closes[1].code, 4002, "server on_close code")
  T.eq(closes[1].reason, "bye", "server on_close reason")
  mgr:close()
end)

T.test("a message over max_message closes with 1009; others keep working", function()
  local closes, got = {}, {}
  local mgr, _, url = ws_server({
    max_message = 1000,
    on_message = function(ws, data, is_binary)
      got[#got + 1] = #data
      echo(ws, data, is_binary)
    end,
    on_close = function(ws, code)
      closes[#closes + 1] = code
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as other:
        await other.send("x" * 1000)
        out("limit", len(await recv(other)))
        async with connect() as big:
            await big.send("y" * 2000)
            code, reason = await closed_code(big)
            out("big closed", code, reason)
        await other.send("still here")
        out("other", await recv(other))
]])
  T.eq(out, "limit 1000\nbig closed 1009 message too big\nother still here\n", "python output")
  T.eq(#got, 2, "messages the server handled (the big one refused)")
  T.eq(got[1], 1000)
  T.eq(got[2], #"still here")
  T.ok(T.poll_until(mgr, function() return #closes >= 2 end, 3000), "both on_close ran")
  T.eq(closes[1], 1009, "on_close code of the refused connection")
  mgr:close()
end)

T.test("subprotocol negotiation", function()
  local chosen
  local mgr, _, url = ws_server({
    protocols = { "chat" },
    on_open = function(ws)
      chosen = ws.protocol
    end,
    on_message = echo,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect(subprotocols=["x", "chat"]) as ws:
        out("subprotocol", ws.subprotocol)
        await ws.send("p")
        out(await recv(ws))
    try:
        async with connect(subprotocols=["x", "y"]) as ws:
            out("unexpected: connected", ws.subprotocol)
    except websockets.InvalidStatusCode as e:
        out("refused", e.status_code)
]])
  T.eq(out, "subprotocol chat\np\nrefused 400\n", "python output")
  T.eq(chosen, "chat", "ws.protocol at the server")
  mgr:close()
end)

T.test("accept(req) refuses the handshake with 403", function()
  local opened, refused = 0, 0
  local mgr, _, url = ws_server({
    accept = function(req)
      if req:query_params("token") == "secret" then
        return true
      end
      refused = refused + 1
      return false
    end,
    on_open = function()
      opened = opened + 1
    end,
    on_message = echo,
  })
  local out = py(mgr, url, [[
async def main():
    try:
        async with connect(URL + "?token=wrong") as ws:
            out("unexpected: connected")
    except websockets.InvalidStatusCode as e:
        out("refused", e.status_code)
    try:
        async with connect() as ws:
            out("unexpected: connected")
    except websockets.InvalidStatusCode as e:
        out("refused", e.status_code)
    async with connect(URL + "?token=secret") as ws:
        await ws.send("in")
        out("accepted", await recv(ws))
]])
  T.eq(out, "refused 403\nrefused 403\naccepted in\n", "python output")
  T.eq(refused, 2, "accept refused twice")
  T.eq(opened, 1, "on_open only for the accepted one")
  mgr:close()
end)

T.test("ws.request: the upgrade request's path, query and headers in on_open", function()
  local seen
  local mgr, _, url = ws_server({
    on_open = function(ws)
      local r = ws.request
      seen = {
        method = r.method, path = r.path, query = r.query, test = r.headers["x-test-header"],
        ua = r.headers["user-agent"], ip = r.remote_ip, port = r.remote_port,
      }
      ws:send("path=" .. r.path .. " x=" .. tostring(r.headers["x-test-header"]))
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect(URL + "?room=blue&n=1", extra_headers={"X-Test-Header": "hello-123"}) as ws:
        out(await recv(ws))
]])
  T.eq(out, "path=/ws x=hello-123\n", "python output")
  T.ok(seen, "on_open ran")
  T.eq(seen.method, "GET")
  T.eq(seen.path, "/ws")
  T.eq(seen.query, "room=blue&n=1")
  T.eq(seen.test, "hello-123")
  T.match(seen.ua, "Python")
  T.eq(seen.ip, "127.0.0.1")
  T.ok(type(seen.port) == "number" and seen.port > 0, "remote port")
  mgr:close()
end)

T.test("ws.state is per connection", function()
  local mgr, _, url = ws_server({
    on_open = function(ws)
      ws.state.name = ws.request.query
      ws.state.count = 0
    end,
    on_message = function(ws, data)
      ws.state.count = ws.state.count + 1
      ws:send(ws.state.name .. ":" .. ws.state.count .. ":" .. data)
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect(URL + "?a") as a, connect(URL + "?b") as b:
        await a.send("1"); out(await recv(a))
        await b.send("1"); out(await recv(b))
        await a.send("2"); out(await recv(a))
        await a.send("3"); out(await recv(a))
        await b.send("2"); out(await recv(b))
]])
  T.eq(out, "a:1:1\nb:1:1\na:2:2\na:3:3\nb:2:2\n", "python output")
  mgr:close()
end)

T.test("broadcast to all connections of a listener, except the sender", function()
  local counts = {}
  local listener
  local mgr, l, url = ws_server({
    on_message = function(ws, data)
      local n = listener:broadcast("news: " .. data, "text", ws)
      counts[#counts + 1] = n
      ws:send("sent to " .. n)
    end,
  })
  listener = l
  local out = py(mgr, url, [[
async def main():
    async with connect() as a, connect() as b, connect() as c:
        await a.send("hello all")
        out("a", await recv(a))
        out("b", await recv(b))
        out("c", await recv(c))
        # Nothing else arrives at a (its first message was its own reply).
        try:
            m = await asyncio.wait_for(a.recv(), 0.3)
            out("a unexpected", m)
        except asyncio.TimeoutError:
            out("a nothing more")
]])
  T.eq(out, "a sent to 2\nb news: hello all\nc news: hello all\na nothing more\n", "python output")
  T.eq(counts[1], 2, "broadcast's count")
  -- Binary broadcast from the test itself, to everyone (no except).
  local conns = 0
  for _ in pairs(l:websocket_connections()) do
    conns = conns + 1
  end
  T.eq(conns, 0, "no open connections left after the clients closed")
  T.eq(l:broadcast("nobody", "binary"), 0, "broadcast with no connections")
  mgr:close()
end)

T.test("mgr:ws_send(id, ...) from a timer; sending to a closed connection", function()
  local results = {}
  local closed_ws
  local mgr, _, url
  mgr, _, url = ws_server({
    on_open = function(ws)
      local id = ws.id
      mgr:set_timeout(50, function()
        results.text = { mgr:ws_send(id, "from a timer") }
        results.binary = { mgr:ws_send(id, "\1\2\3", "binary") }
        results.queued = ws:send_queued()
      end)
    end,
    on_message = function(ws, data)
      results.queued_in_handler = ws:send_queued()
      ws:send("ack " .. data)
    end,
    on_close = function(ws)
      closed_ws = ws
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        out(await recv(ws))
        out((await recv(ws)).hex())
        await ws.send("done")
        out(await recv(ws))
]])
  T.eq(out, "from a timer\n010203\nack done\n", "python output")
  T.eq(results.text[1], true, "ws_send text returns true")
  T.eq(results.binary[1], true, "ws_send binary returns true")
  T.eq(type(results.queued), "number", "send_queued() type")
  T.ok(results.queued >= 0, "send_queued() >= 0")
  T.eq(type(results.queued_in_handler), "number", "send_queued() in a handler")
  T.ok(T.poll_until(mgr, function() return closed_ws ~= nil end, 3000), "on_close ran")
  local id = closed_ws.id
  local ok, err = closed_ws:send("too late")
  T.eq(ok, nil, "send to a closed connection")
  T.eq(err, "closed", "its error")
  ok, err = closed_ws:ping()
  T.eq(ok, nil, "ping on a closed connection")
  T.eq(err, "closed")
  ok, err = mgr:ws_send(id, "too late")
  T.eq(ok, nil, "ws_send to a closed id")
  T.match(err, "no WebSocket connection")
  T.eq(closed_ws:send_queued(), 0, "send_queued() of a closed connection")
  T.eq(type(closed_ws:send_queued()), "number")
  mgr:close()
end)

T.test("res:upgrade in an HTTP handler; plain HTTP on the same listener", function()
  local opened
  local upgrades = {}
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if req.path == "/chat" then
      local ws, err = res:upgrade({
        on_open = function(ws)
          opened = ws.request.path
        end,
        on_message = echo,
      })
      upgrades[#upgrades + 1] = ws and "ws" or err
      return
    end
    return 200, "plain\n"
  end))
  local base = "127.0.0.1:" .. l:port()
  local out = py(mgr, "ws://" .. base .. "/chat", [[
async def main():
    async with connect() as ws:
        await ws.send("via upgrade")
        out(await recv(ws))
]])
  T.eq(out, "via upgrade\n", "python output")
  T.eq(opened, "/chat", "on_open saw the path")
  local body = T.run_client(mgr, "curl -s --max-time 5 http://" .. base .. "/other")
  T.eq(body, "plain\n", "plain HTTP still served")
  local code = T.run_client(mgr, "curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://"
                                 .. base .. "/chat")
  T.eq(code, "426", "non-WebSocket request to the upgrade path")
  T.eq(upgrades[1], "ws", "upgrade() returned the WebSocket")
  T.eq(upgrades[2], "not a WebSocket handshake request", "upgrade() of a plain request")
  mgr:close()
end)

T.test("server ping gets the client's pong; empty messages; close without a code", function()
  local controls, got, closes = {}, {}, {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data, is_binary)
      got[#got + 1] = data
      if data == "ping me" then
        controls.ping_result = ws:ping("srv")
      end
      echo(ws, data, is_binary)
    end,
    on_control = function(ws, kind, data)
      controls[#controls + 1] = kind .. ":" .. data
    end,
    on_close = function(ws, code, reason)
      closes[#closes + 1] = code .. ":" .. reason
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send("")
        out("empty", repr(await recv(ws)))
        await ws.send(b"")
        out("empty", repr(await recv(ws)))
        await ws.send("ping me")
        out(await recv(ws))
        await asyncio.sleep(0.2)  # lets websockets answer the server's ping
        # A close frame without a status code.
        await ws.write_close_frame(websockets.frames.Close(1005, ""), b"")
        await asyncio.wait_for(ws.wait_closed(), 5)
]])
  T.eq(out, "empty ''\nempty b''\nping me\n", "python output")
  T.eq(#got, 3)
  T.eq(got[1], "", "empty text message")
  T.eq(got[2], "", "empty binary message")
  T.eq(controls.ping_result, true, "ws:ping() result")
  T.ok(T.poll_until(mgr, function() return #closes > 0 end, 3000), "on_close ran")
  local saw_pong = false
  for _, c in ipairs(controls) do
    saw_pong = saw_pong or c == "pong:srv"
  end
  T.ok(saw_pong, "on_control saw the pong to the server's ping")
  T.eq(closes[1], "1005:", "close frame without a code reports 1005")
  mgr:close()
end)

T.test("a fragmented message over max_message closes with 1009", function()
  local got = {}
  local mgr, _, url = ws_server({
    max_message = 1000,
    on_message = function(ws, data, is_binary)
      got[#got + 1] = #data
      echo(ws, data, is_binary)
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect() as ws:
        await ws.send(["a" * 400, "b" * 400, "c" * 200])
        out("at the limit", len(await recv(ws)))
        await ws.send(["a" * 600, "b" * 600])
        code, reason = await closed_code(ws)
        out("closed", code, reason)
]])
  T.eq(out, "at the limit 1000\nclosed 1009 message too big\n", "python output")
  T.eq(#got, 1, "only the message within the limit reached on_message")
  mgr:close()
end)

T.test("a fragmented message of exactly max_message, its last frame split across reads", function()
  -- Mongoose counts one opcode byte in front of the fragments it holds;
  -- the limit check must not: 400 + 400 + 200 bytes fit a 1000-byte limit
  -- however the frames are cut into reads.
  local got = {}
  local mgr, _, url = ws_server({
    max_message = 1000,
    on_message = function(ws, data, is_binary)
      got[#got + 1] = #data
      echo(ws, data, is_binary)
    end,
  })
  local port = url:match(":(%d+)/")
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
  local out, rc = T.run_client(mgr, T.q(T.python) .. " " .. T.q(path) .. " " .. port, 15000)
  T.eq(rc, 0, "python exit")
  T.eq(out, "opcode 1 length 1000\n", "the whole message echoed, not a 1009 close (opcode 8)")
  T.eq(got[1], 1000, "on_message saw 1000 bytes")
  mgr:close()
end)

T.test("res:upgrade with a shared opts.headers table across upgrades", function()
  -- A handler that passes the same headers table on every upgrade, and a
  -- subprotocol only when the client offers one.
  -- Regression: upgrade() once wrote Sec-WebSocket-Protocol into the
  -- caller's opts.headers table, so the protocol chosen for one client was
  -- sent to the next one too, which refused the handshake.
  local COMMON = { ["X-Served-By"] = "test" }
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    local protocol
    for _, p in ipairs(req:websocket_protocols()) do
      if p == "chat" then
        protocol = p
      end
    end
    res:upgrade({ headers = COMMON, protocol = protocol, on_message = echo })
  end))
  local out = py(mgr, "ws://127.0.0.1:" .. l:port() .. "/ws", [[
async def main():
    async with connect(subprotocols=["chat"]) as ws:
        out("first", ws.subprotocol, ws.response_headers.get("X-Served-By"))
    try:
        async with connect() as ws:
            await ws.send("x")
            out("second", ws.subprotocol, await recv(ws))
    except websockets.InvalidHandshake as e:
        out("second refused:", e)
]])
  T.eq(out, "first chat test\nsecond None x\n", "python output")
  T.eq(COMMON["Sec-WebSocket-Protocol"], nil, "the caller's headers table is left alone")
  mgr:close()
end)

T.test("ws:close sends only the codes RFC 6455 allows; reserved ones raise", function()
  -- 1004-1006 and 1015 are reserved (1005 and 1015 must never be sent) and
  -- 1016-2999 are for future revisions: a peer fails the connection with
  -- 1002 on any of them. The server is asked for one code per connection.
  local refused = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data)
      local code = tonumber(data)
      local ok, err = pcall(function() ws:close(code, "code " .. data) end)
      if not ok then
        refused[code] = err
        ws:send("refused")
      end
    end,
  })
  local out = py(mgr, url, [[
async def main():
    for code in (1005, 1015, 1004, 1006, 1016, 2999, 1000, 1003, 1007, 1014, 3000, 4999):
        async with connect() as ws:
            await ws.send(str(code))
            try:
                m = await recv(ws)
                out(code, m)
            except websockets.ConnectionClosed:
                out(code, "closed", ws.close_code, ws.close_reason)
]])
  T.eq(out, "1005 refused\n1015 refused\n1004 refused\n1006 refused\n1016 refused\n2999 refused\n"
    .. "1000 closed 1000 code 1000\n1003 closed 1003 code 1003\n1007 closed 1007 code 1007\n"
    .. "1014 closed 1014 code 1014\n3000 closed 3000 code 3000\n4999 closed 4999 code 4999\n",
    "what python saw")
  for _, code in ipairs({ 1004, 1005, 1006, 1015, 1016, 2999 }) do
    T.match(refused[code], "^[^:]*test_websocket%.lua:%d+: code must be an integer in 1000%-1003, 1007%-1014 "
      .. "or 3000%-4999$", "error for " .. code .. ", raised at the caller")
  end
  mgr:close()
end)

---------------------------------------------------------------------------
-- The library's own client against its own server
---------------------------------------------------------------------------

-- Runs mgr until done() or timeout; fails on timeout.
local function run_until(mgr, done, what)
  T.ok(T.poll_until(mgr, done, 5000), "timed out waiting for " .. what)
end

T.test("own client: text and binary echo", function()
  local server_seen, got, opened = {}, {}, false
  local mgr, _, url = ws_server({
    protocols = { "chat" },
    on_message = function(ws, data, is_binary)
      server_seen[#server_seen + 1] = data
      echo(ws, data, is_binary)
    end,
  })
  local blob = byte_pattern(256 * 1024)
  local c = assert(mgr:ws_connect(url, {
    protocols = { "x", "chat" },
    on_open = function()
      opened = true
    end,
    on_message = function(ws, data, is_binary)
      got[#got + 1] = { data = data, binary = is_binary }
    end,
  }))
  -- Sent before the handshake: queued until it completes.
  T.eq(c:send("hello"), true)
  T.eq(c:send("\0\1\2", "binary"), true)
  T.eq(c:send(blob, "binary"), true)
  run_until(mgr, function() return #got == 3 end, "three echoes")
  T.ok(opened, "on_open ran")
  T.eq(c.protocol, "chat", "client sees the chosen subprotocol")
  T.eq(got[1].data, "hello")
  T.eq(got[1].binary, false)
  T.eq(got[2].data, "\0\1\2")
  T.eq(got[2].binary, true)
  T.ok(got[3].data == blob, "256 KB binary echo intact")
  T.eq(#server_seen, 3)
  mgr:close()
end)

T.test("own client: close codes both ways", function()
  local server_close, client_close = {}, {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data)
      if data == "close me" then
        ws:close(4002, "server bye")
      else
        ws:send(data)
      end
    end,
    on_close = function(ws, code, reason)
      server_close[#server_close + 1] = code .. " " .. reason
    end,
  })
  local function client()
    local rec = {}
    client_close[#client_close + 1] = rec
    return assert(mgr:ws_connect(url, {
      on_message = function(ws, data)
        rec.msg = data
      end,
      on_close = function(ws, code, reason)
        rec.close = code .. " " .. reason
      end,
    }))
  end
  -- The client closes.
  local a = client()
  a:send("ping-pong")
  run_until(mgr, function() return client_close[1].msg ~= nil end, "echo")
  T.eq(a:close(4001, "client bye"), true)
  T.eq(select(2, a:send("after close")), "closed", "send after close()")
  run_until(mgr, function() return client_close[1].close and #server_close == 1 end, "close 1")
  T.eq(server_close[1], "4001 client bye", "server on_close after the client closed")
  T.eq(client_close[1].close, "4001 client bye", "client on_close after it closed")
  -- The server closes.
  client():send("close me")
  run_until(mgr, function() return client_close[2].close and #server_close == 2 end, "close 2")
  T.eq(client_close[2].close, "4002 server bye", "client on_close after the server closed")
  T.eq(server_close[2], "4002 server bye", "server on_close after it closed")
  mgr:close()
end)

T.test("own client: a shared opts.headers table is left alone", function()
  -- Regression: ws_connect once wrote Sec-WebSocket-Protocol into the
  -- caller's opts.headers, so a later connect with the same headers but no
  -- protocols still offered them.
  local seen = {}
  local mgr, _, url = ws_server({
    protocols = { "chat" },
    on_open = function(ws)
      seen[#seen + 1] = ws.request.headers["sec-websocket-protocol"] or "none"
    end,
  })
  local H = { ["X-Client"] = "test" }
  local opened = 0
  local function open(protocols)
    assert(mgr:ws_connect(url, {
      headers = H, protocols = protocols,
      on_open = function()
        opened = opened + 1
      end,
    }))
  end
  open({ "chat" })
  run_until(mgr, function() return opened == 1 end, "first open")
  open(nil)
  run_until(mgr, function() return opened == 2 end, "second open")
  T.eq(seen[1], "chat", "first client offers chat")
  T.eq(seen[2], "none", "second client offers no subprotocol")
  T.eq(H["Sec-WebSocket-Protocol"], nil, "the caller's headers table is left alone")
  mgr:close()
end)

T.test("own client: connecting to a closed port reports an error, no crash", function()
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  -- A port that was just free: listen on 0, note the port, close.
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "x" end))
  local port = l:port()
  l:close()
  T.poll_until(mgr, function() return mgr:connection_count() == 0 end, 2000)
  local errors, closes, opened = {}, {}, false
  local c, err = mgr:ws_connect("ws://127.0.0.1:" .. port .. "/ws", {
    on_open = function()
      opened = true
    end,
    on_error = function(ws, e)
      errors[#errors + 1] = e
    end,
    on_close = function(ws, code, reason)
      closes[#closes + 1] = { code = code, reason = reason }
    end,
  })
  if c then
    c:send("queued before the handshake")
    run_until(mgr, function() return #closes > 0 end, "on_close after a refused connect")
    T.eq(#closes, 1, "on_close once")
    T.eq(closes[1].code, 1006, "abnormal closure code")
    T.ok(#errors >= 1, "on_error ran")
    T.match(errors[1], "%S", "error text")
    T.eq(opened, false, "never opened")
    T.eq(select(2, c:send("x")), "closed", "send after the failure")
  else
    T.match(err, "%S", "error from ws_connect")
  end
  -- The manager still works.
  local got
  local srv = assert(mgr:ws_listen("http://127.0.0.1:0", { path = "/ws", on_message = echo }))
  local c2 = assert(mgr:ws_connect("ws://127.0.0.1:" .. srv:port() .. "/ws", {
    on_message = function(ws, data)
      got = data
    end,
  }))
  c2:send("still alive")
  run_until(mgr, function() return got ~= nil end, "echo after the failure")
  T.eq(got, "still alive")
  mgr:close()
end)

T.test("own client: bad URLs and arguments", function()
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  T.raises("url must be a string", mgr.ws_connect, mgr, nil)
  T.raises("opts must be a table", mgr.ws_connect, mgr, "ws://127.0.0.1:1/", 5)
  local srv = assert(mgr:ws_listen("http://127.0.0.1:0", { path = "/ws", on_message = echo }))
  local opened
  local c = assert(mgr:ws_connect("ws://127.0.0.1:" .. srv:port() .. "/ws", {
    on_open = function()
      opened = true
    end,
  }))
  run_until(mgr, function() return opened end, "open")
  T.raises("kind must be", c.send, c, "x", "nonsense")
  T.raises("data must be a string", c.send, c, 42)
  T.raises("code must be", c.close, c, 999)
  T.raises("ping data", c.ping, c, ("p"):rep(126))
  T.eq(c:ping("ok"), true, "ping")
  mgr:close()
  T.eq(core.millis() > 0, true)
end)

T.test("an empty Sec-WebSocket-Key is refused (426), the server goes on", function()
  local mgr, listener = ws_server({ on_message = echo })
  local port = listener:port()
  local out, rc = T.run_client(mgr, T.python .. " -c " .. T.q(string.format([[
import socket
s = socket.create_connection(("127.0.0.1", %d)); s.settimeout(5)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key:\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
]], port)))
  T.eq(rc, 0, "python exit")
  T.match(out, "^HTTP/1.1 426", "status line of a handshake with an empty key")
  -- A good client is still served.
  local got
  local c = assert(mgr:ws_connect("ws://127.0.0.1:" .. port .. "/ws", {
    on_open = function(ws) ws:send("still here") end,
    on_message = function(_, data) got = data end,
  }))
  T.ok(T.poll_until(mgr, function() return got ~= nil end, 5000), "echo after the bad handshake")
  T.eq(got, "still here", "echo")
  c:close()
  mgr:close()
end)

---------------------------------------------------------------------------
-- Option checks, backpressure, clean-up
---------------------------------------------------------------------------

T.test("a bad max_message raises at the caller before anything is opened", function()
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  -- A port that is free: taken from port 0, then given back.
  local probe = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "x" end))
  local port = probe:port()
  probe:close()
  T.ok(T.poll_until(mgr, function() return mgr:connection_count() == 0 end, 2000), "probe closed")
  local PATTERN = "^[^:]*test_websocket%.lua:%d+: max_message must be a positive integer"
  for _, bad in ipairs({ "1M", 0, -1, 1.5, 0 / 0, true }) do
    T.raises(PATTERN, function() mgr:ws_listen("http://127.0.0.1:" .. port, { max_message = bad }) end)
    T.raises(PATTERN, function() mgr:ws_connect("ws://127.0.0.1:" .. port .. "/", { max_message = bad }) end)
  end
  T.eq(mgr:connection_count(), 0, "no listener or connection left open")
  -- The port was not left bound: it can be listened on now.
  local upgrade_err
  local l = assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
    local ok, err = pcall(function() res:upgrade({ max_message = "1M" }) end)
    upgrade_err = not ok and err
    return 400, "bad options\n" -- the response is still unsent: the handler answers
  end))
  T.eq(l:port(), port, "the same port")
  local resp = assert(mgr:fetch("http://127.0.0.1:" .. port .. "/ws", {
    headers = { Upgrade = "websocket", Connection = "Upgrade", ["Sec-WebSocket-Version"] = "13",
                ["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==" },
  }))
  T.eq(resp.status, 400, "the handler's own answer after upgrade() raised")
  T.match(upgrade_err, PATTERN, "res:upgrade error, raised at the caller")
  -- Good values are taken.
  T.ok(mgr:ws_listen("http://127.0.0.1:0", { max_message = 1 }), "max_message = 1")
  mgr:close()
end)

T.test("backpressure: send_queued grows while the peer does not read, then drains", function()
  local server_ws
  local mgr, l = ws_server({
    on_open = function(ws) server_ws = ws end,
  })
  local COUNT, SIZE = 256, 65536
  local FRAME = SIZE + 10 -- a 64 KiB binary frame: 2 header bytes and an 8-byte length
  local go = T.tmpdir() .. "/backpressure.go"
  os.remove(go)
  local path = T.tmpdir() .. "/backpressure.py"
  T.write_file(path, [[
import os, socket, sys, time
port, go, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # a small window
s.settimeout(30)
s.connect(("127.0.0.1", port))
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
# Reads nothing more until the test says so.
deadline = time.time() + 20
while not os.path.exists(go):
    if time.time() > deadline:
        sys.exit(3)
    time.sleep(0.01)
n = 0
while n < want:
    b = s.recv(1 << 20)
    if not b:
        break
    n += len(b)
print(n, flush=True)
]])
  local job = T.spawn(T.q(T.python) .. " " .. T.q(path) .. " " .. l:port() .. " " .. T.q(go) .. " "
                      .. COUNT * FRAME)
  T.ok(T.poll_until(mgr, function() return server_ws ~= nil end, 10000), "handshake done")
  local chunk = ("b"):rep(SIZE)
  local half
  for i = 1, COUNT do
    T.eq(server_ws:send(chunk, "binary"), true, "send " .. i)
    mgr:poll(0)
    if i == COUNT / 2 then
      half = server_ws:send_queued()
    end
  end
  for _ = 1, 10 do
    mgr:poll(5) -- whatever the kernel still takes
  end
  local full = server_ws:send_queued()
  T.ok(half > 1024 * 1024, "queued after 8 MiB: " .. half)
  T.ok(full > half + 4 * 1024 * 1024, "the queue grows: " .. half .. " then " .. full)
  T.ok(full > 6 * 1024 * 1024, "several MiB queued after 16 MiB: " .. full)
  T.ok(full <= COUNT * FRAME, "never more than was sent: " .. full)
  -- The peer reads: the queue falls back to 0.
  T.write_file(go, "")
  T.ok(T.poll_until(mgr, function() return server_ws:send_queued() == 0 end, 20000),
       "queue drained: " .. server_ws:send_queued())
  local out, rc, err = T.wait(job, mgr, 30000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(tonumber(out), COUNT * FRAME, "the peer got every frame")
  mgr:close()
end)

-- Opens a server WebSocket and a client one (the own client), makes the
-- client close, and returns their ids; keeps no reference to either.
local function open_and_close(mgr, url, weak)
  local done = false
  local c = assert(mgr:ws_connect(url, {
    on_open = function(ws) ws:send("bye") end,
    on_message = function(ws) ws:close(4000, "done") end,
    on_close = function() done = true end,
  }))
  weak[c], weak[c.state] = "client", "client state"
  local id = c.id
  T.ok(T.poll_until(mgr, function() return done end, 5000), "client on_close ran")
  return id
end

T.test("state freed on close: listener table, mgr.owners, the objects themselves", function()
  local weak = setmetatable({}, { __mode = "k" })
  local listener, server_id
  local in_close = {}
  local mgr, l, url = ws_server({
    on_open = function(ws)
      server_id = ws.id
      weak[ws], weak[ws.state] = "server", "server state"
      in_close.listed_open = listener:websocket_connections()[ws.id] ~= nil
    end,
    on_message = echo,
    on_close = function(ws)
      in_close.listed = listener:websocket_connections()[ws.id] ~= nil
      in_close.raw = listener.websockets[ws.id] ~= nil
      in_close.ran = true
    end,
  })
  listener = l
  local client_id = open_and_close(mgr, url, weak)
  T.ok(T.poll_until(mgr, function() return in_close.ran end, 5000), "server on_close ran")
  mgr:poll(0)
  T.eq(in_close.listed_open, true, "listed while open")
  T.eq(in_close.listed, false, "not in websocket_connections() in on_close")
  T.eq(in_close.raw, false, "not in the listener's table in on_close")
  T.eq(l.websockets[server_id], nil, "listener table after close")
  T.eq(mgr.owners[server_id], nil, "mgr.owners of the server WebSocket")
  T.eq(mgr.owners[client_id], nil, "mgr.owners of the client WebSocket")
  collectgarbage("collect")
  collectgarbage("collect")
  local left = {}
  for _, what in pairs(weak) do
    left[#left + 1] = what
  end
  table.sort(left)
  T.eq(table.concat(left, ", "), "", "objects still referenced after close")
  mgr:close()
end)

T.run()
