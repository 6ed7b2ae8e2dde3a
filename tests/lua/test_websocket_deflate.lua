-- permessage-deflate (RFC 7692) on both sides, with python3's websockets
-- (which offers it by default) and raw frames compressed by python's zlib;
-- fragmented and streamed sends.
local T = require("testlib")
local P = require("testpy")

T.need_python_module("websockets", "python3-websockets")

local mgr, logs = T.logging_manager({ log_level = "info" })

local function echo_server(opts)
  opts.path = "/ws"
  opts.on_message = opts.on_message or function(ws, data, is_binary)
    ws:send(data, is_binary and "binary" or "text")
  end
  return assert(mgr:ws_listen("http://127.0.0.1:0", opts))
end

-- Raw frames with compression: deflate(msg) as RFC 7692 7.2.1 says (sync
-- flush, the 00 00 ff ff tail removed) and a reader that inflates.
local PY_DEFLATE = P.HTTP .. P.WS .. [[
import zlib
def ws_open_deflate(offer=b"permessage-deflate", port=None):
    s = conn(port)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Extensions: " + offer + b"\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1)
    return s, buf
def deflate(msg):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = c.compress(msg) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(b"\x00\x00\xff\xff")
    return z[:-4]
def zframe(payload, op=1):
    f = bytearray(frame(payload, op))
    f[0] |= 0x40
    return bytes(f)
def inflate(z):
    d = zlib.decompressobj(-15)
    return d.decompress(z + b"\x00\x00\xff\xff")
]]

local function py(code, port, timeout_ms)
  return P.check(mgr, PY_DEFLATE .. code, port, timeout_ms)
end

local server = echo_server({})

T.test("python's websockets client: negotiated without context takeover, echoes intact", function()
  local out = P.check(mgr, P.WEBSOCKETS .. [[
async def main():
    async with connect() as ws:
        out("ext", ws.response_headers.get("Sec-WebSocket-Extensions"))
        await ws.send("hello " * 1000)
        out("text", (await recv(ws)) == "hello " * 1000)
        big = bytes(range(256)) * 4096
        await ws.send(big)
        out("binary", (await recv(ws)) == big)
        for i in range(20):
            await ws.send("message %d" % i)
            assert (await recv(ws)) == "message %d" % i
        out("many", True)
]] .. P.MAIN, "ws://127.0.0.1:" .. server:port() .. "/ws")
  T.eq(out, "ext permessage-deflate; server_no_context_takeover; client_no_context_takeover\n"
         .. "text True\nbinary True\nmany True\n")
end)

T.test("compressed frames on the wire both ways: 100 KB of text in under 1 KB", function()
  local out = py([[
s, head = ws_open_deflate()
out("ext", b"Sec-WebSocket-Extensions: permessage-deflate" in head)
msg = b"0123456789" * 10000
s.sendall(zframe(deflate(msg)))
b0, z = read_raw_frame(s)
out("reply", hex(b0), len(z) < 1000, inflate(z) == msg)
s.sendall(frame(b"tiny"))   # uncompressed messages are fine too
b0, data = read_raw_frame(s)
out("tiny", hex(b0), data)
]], server:port())
  T.eq(out, "ext True\nreply 0xc1 True True\ntiny 0x81 b'tiny'\n",
       "RSV1 on the compressed echo; a short message goes out as it is")
end)

T.test("a deflate bomb closes with 1009, corrupt data and bad UTF-8 with 1007", function()
  local small = echo_server({ max_message = 1024 * 1024 })
  local out = py([[
s, _ = ws_open_deflate()
s.sendall(zframe(deflate(b"\0" * (16 * 1024 * 1024)), op=2))
out("bomb", close_code(s))
s, _ = ws_open_deflate()
s.sendall(zframe(b"\xff\xfe\xfd\xfc not deflate"))
out("corrupt", close_code(s))
s, _ = ws_open_deflate()
s.sendall(zframe(deflate(b"ok \xff\xfe")))
out("utf8", close_code(s))
s, _ = ws_open_deflate()
s.sendall(frame(b"ping", op=9)[:1] and bytes([0xc9]) + frame(b"ping", op=9)[1:])
out("rsv1_control", close_code(s))
]], small:port())
  T.eq(out, "bomb 1009\ncorrupt 1007\nutf8 1007\nrsv1_control 1002\n")
  T.ok(T.find_log(logs, "message too big"), "the bomb is logged")
  small:close()
end)

T.test("deflate = false: the extension is declined; context_takeover keeps the context", function()
  local off = echo_server({ deflate = false })
  local keep = echo_server({ deflate = { context_takeover = true, level = 6, min_size = 0 } })
  local out = py([[
s, head = ws_open_deflate()
out("off", b"Extensions" in head)
s.close()
s, head = ws_open_deflate(b"permessage-deflate", int(sys.argv[2]))
out("keep", [l for l in head.split(b"\r\n") if l.startswith(b"Sec-WebSocket-Extensions")])
c = zlib.compressobj(6, zlib.DEFLATED, -15)
d = zlib.decompressobj(-15)
sizes = []
for i in range(3):
    z = c.compress(b"the same words again and again") + c.flush(zlib.Z_SYNC_FLUSH)
    s.sendall(zframe(z[:-4]))
    b0, reply = read_raw_frame(s)
    assert b0 == 0xc1, hex(b0)   # compressed (min_size 0)
    sizes.append(len(reply))
    assert d.decompress(reply + b"\x00\x00\xff\xff") == b"the same words again and again"
out("smaller", sizes[1] < sizes[0])
]], off:port() .. " " .. keep:port())
  T.eq(out, "off False\nkeep [b'Sec-WebSocket-Extensions: permessage-deflate']\nsmaller True\n")
  off:close()
  keep:close()
end)

T.test("our client with deflate = true against python's websockets server", function()
  local port = T.free_port()
  local job = P.spawn([[
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.sleep(6)
asyncio.run(main())
]], port)
  os.execute("sleep 0.5")
  local got, ext = {}, nil
  local ws = assert(mgr:ws_connect("ws://127.0.0.1:" .. port .. "/", {
    deflate = true,
    on_open = function(w) ext = w.extensions end,
    on_message = function(_, data) got[#got + 1] = data end,
  }))
  local big = ("abc"):rep(100000)
  ws:send("hello")
  ws:send(big)
  T.ok(T.poll_until(mgr, function() return #got == 2 end, 5000), "both echoed")
  T.match(ext, "^permessage%-deflate", "negotiated: " .. tostring(ext))
  T.ok(ws.compressed, "ws.compressed")
  T.eq(got[1], "hello")
  T.eq(got[2], big)
  ws:close()
  T.wait(T.spawn("true"), mgr)
  os.execute("pkill -f " .. T.q("websockets.serve(echo, \"127.0.0.1\", int(sys.argv[1]))") .. " 2>/dev/null")
  T.wait(job, mgr, 10000)
end)

T.test("fragment_size: large messages go out in fragments; ws:stream sends piece by piece", function()
  local frag, broadcast_result, after_close
  frag = echo_server({ deflate = false, fragment_size = 16384,
    on_message = function(ws, data)
      if data == "stream-close" then
        local st = assert(ws:stream("text"))
        assert(st:write("a"))
        ws:close(1000)
        after_close = { st:write("b") }
      elseif data == "stream" then
        local st = assert(ws:stream("text"))
        assert(st:write("one "))
        T.raises("being streamed", ws.send, ws, "not now")
        broadcast_result = { frag:broadcast("everyone") } -- mid-message: skipped, not closed
        assert(ws:ping("in between"))
        assert(st:write("two "))
        assert(st:finish("three"))
      else
        ws:send(data, "binary")
      end
    end })
  local out = py([[
s = ws_open()
s.sendall(frame(b"z" * 100000, op=2))
frames = []
total = 0
while total < 100000:
    b0, data = read_raw_frame(s)
    frames.append(b0)
    total += len(data)
out("frames", len(frames), hex(frames[0]), hex(frames[1]), hex(frames[-1]), total)
s.sendall(frame(b"stream"))
parts = []
while True:
    b0, data = read_raw_frame(s)
    parts.append((hex(b0), data.decode()))
    if b0 & 0x80 and b0 & 15 != 9:
        break
out("stream", parts)
s.sendall(frame(b"stream-close"))
b0, data = read_raw_frame(s)
b1, close = read_raw_frame(s)
out("then", hex(b0), data.decode(), hex(b1), close[:2].hex())
]], frag:port())
  T.eq(out, "frames 7 0x2 0x0 0x80 100000\n"
         .. "stream [('0x1', 'one '), ('0x89', 'in between'), ('0x0', 'two '), ('0x80', 'three')]\n"
         .. "then 0x1 a 0x88 03e8\n")
  T.eq(broadcast_result[1], 0, "a broadcast mid-message is not sent to that WebSocket")
  T.eq(broadcast_result[2], 1, "and counts with the slow ones")
  T.eq(after_close[1], nil, "a stream write after ws:close()")
  T.eq(after_close[2], "closed")
  frag:close()
end)

T.run()
