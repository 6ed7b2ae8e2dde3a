-- WebSocket messages (mongoose.websocket) between the project's server and
-- Python's websockets package (Debian python3-websockets) run in the
-- background while the manager polls: text, binary, 1 MB and fragmented
-- messages, pings, close codes both ways, and max_message. Handlers only
-- record what they see; assertions run afterwards, outside the handlers
-- (an error inside a handler is only logged).
local T = require("testlib")
T.need_python_module("websockets", "python3-websockets")
local W = require("testws")
local ws_server, echo, py, py_ws = W.server, W.echo, W.py, W.py_ws
local controls_into, closes_into, wait_entry = W.controls_into, W.closes_into, W.wait_entry
local byte_pattern = W.byte_pattern

---------------------------------------------------------------------------
-- Messages
---------------------------------------------------------------------------

T.test("text and binary echo", function()
  local seen = {}
  local mgr, _, url = ws_server({
    on_message = function(ws, data, is_binary)
      seen[#seen + 1] = (is_binary and "binary:" or "text:") .. data
      echo(ws, data, is_binary)
    end,
  })
  local out = py_ws(mgr, url, [[
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

T.test("the common fields and fields of one's own read and write by name", function()
  local seen = {}
  local mgr, l, url
  mgr, l, url = ws_server({
    on_open = function(ws)
      seen.open = { ws.open, ws.closed, ws.mgr == mgr, ws.listener == l, type(ws.id) }
      ws.user = "bob" -- a field of the application's own
      ws.state.n = 0
    end,
    on_message = function(ws, data)
      ws.state.n = ws.state.n + 1
      seen.msg = { ws.user, ws.state.n, tostring(ws) == "mongoose.WebSocket " .. ws.id,
                   mgr:ws_send(ws.id, "via id: " .. data) }
    end,
    on_close = function(ws)
      seen.close = { ws.open, ws.closed, ws.user }
    end,
  })
  local out = py_ws(mgr, url, [[
        await ws.send("hi")
        out(await recv(ws))
]])
  T.eq(out, "via id: hi\n", "python output")
  T.ok(T.poll_until(mgr, function() return seen.close ~= nil end, 5000), "closed")
  local function list(t)
    local parts = {}
    for i = 1, #t do
      parts[i] = tostring(t[i])
    end
    return table.concat(parts, " ")
  end
  T.eq(list(seen.open), "true false true true number", "in on_open")
  T.eq(list(seen.msg), "bob 1 true true", "in on_message")
  T.eq(list(seen.close), "false true bob", "in on_close")
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
  local out = py_ws(mgr, url, [[
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

-- An echo server with max_message 1000 (and opts) that records the size
-- of each message it handles; returns mgr, url and those sizes.
local function limited_server(opts)
  local got = {}
  opts.max_message = 1000
  opts.on_message = function(ws, data, is_binary)
    got[#got + 1] = #data
    echo(ws, data, is_binary)
  end
  local mgr, _, url = ws_server(opts)
  return mgr, url, got
end

T.test("a message over max_message closes with 1009; others keep working", function()
  local closes = {}
  local mgr, url, got = limited_server({
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

T.test("a fragmented message over max_message closes with 1009", function()
  local mgr, url, got = limited_server({})
  local out = py_ws(mgr, url, [[
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

---------------------------------------------------------------------------
-- Control frames and closing
---------------------------------------------------------------------------

-- A server (ws_server) running on_message (echo by default) that records
-- its control frames and closes; returns mgr, url, controls and closes.
local function recording_server(on_message)
  local controls, closes = {}, {}
  local mgr, _, url = ws_server({
    on_message = on_message or echo,
    on_control = controls_into(controls),
    on_close = closes_into(closes),
  })
  return mgr, url, controls, closes
end

T.test("ping from the client gets a pong; on_control sees it", function()
  local mgr, url, controls = recording_server()
  local out = py_ws(mgr, url, [[
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

T.test("server ping gets the client's pong; empty messages; close without a code", function()
  local got, ping = {}, {}
  local mgr, url, controls, closes = recording_server(function(ws, data, is_binary)
    got[#got + 1] = data
    if data == "ping me" then
      ping.result = ws:ping("srv")
    end
    echo(ws, data, is_binary)
  end)
  local out = py_ws(mgr, url, [[
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
  T.eq(ping.result, true, "ws:ping() result")
  wait_entry(mgr, closes, "on_close ran")
  local saw_pong = false
  for _, c in ipairs(controls) do
    saw_pong = saw_pong or c == "pong:srv"
  end
  T.ok(saw_pong, "on_control saw the pong to the server's ping")
  T.eq(closes[1].code .. ":" .. closes[1].reason, "1005:", "close frame without a code reports 1005")
  mgr:close()
end)

T.test("close from the client with a code and a reason", function()
  local mgr, url, _, closes = recording_server()
  local out = py_ws(mgr, url, [[
        await ws.send("hi")
        await recv(ws)
        await ws.close(4000, "client is done")
        out("closed", ws.close_code)
]])
  T.eq(out, "closed 4000\n", "python sees its close echoed")
  wait_entry(mgr, closes, "server on_close ran")
  T.eq(#closes, 1, "on_close runs once")
  T.eq(closes[1].code, 4000, "close code at the server")
  T.eq(closes[1].reason, "client is done", "close reason at the server")
  mgr:close()
end)

T.test("close from the server with a code and a reason", function()
  local mgr, url, _, closes = recording_server(function(ws, data)
    if data == "close me" then
      T.ok(ws:close(4002, "bye"))
    else
      ws:send(data)
    end
  end)
  local out = py_ws(mgr, url, [[
        await ws.send("close me")
        code, reason = await closed_code(ws)
        out("closed", code, repr(reason))
]])
  T.eq(out, "closed 4002 'bye'\n", "python sees the server's close")
  wait_entry(mgr, closes, "server on_close ran")
  T.eq(closes[1].code, 4002, "server on_close code")
  T.eq(closes[1].reason, "bye", "server on_close reason")
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

T.run()
