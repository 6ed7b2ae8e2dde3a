-- WebSocket servers (mongoose.websocket: ws_listen, res:upgrade) and the
-- handshake, against Python's websockets package: subprotocols, accept(),
-- ws.request and ws.state, broadcast and mgr:ws_send, opts.http, and an
-- upgrade from an HTTP handler next to plain HTTP.
local T = require("testlib")
T.need_python_module("websockets", "python3-websockets")
local W = require("testws")
local ws_server, echo, py, py_ws = W.server, W.echo, W.py, W.py_ws
local mongoose = require("mongoose")

---------------------------------------------------------------------------
-- The handshake
---------------------------------------------------------------------------

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

T.test("opts.http answers other paths and plain requests to the WebSocket's own path", function()
  local mgr, l, url = ws_server({
    on_message = echo,
    http = function(req)
      return 200, "page " .. req.path .. "\n"
    end,
  })
  local base = "http://127.0.0.1:" .. l:port()
  local r = assert(mgr:fetch(base .. "/other"))
  T.eq(r.status, 200, "another path")
  T.eq(r.body, "page /other\n")
  r = assert(mgr:fetch(base .. "/ws"))
  T.eq(r.status, 200, "a plain GET of the WebSocket's path")
  T.eq(r.body, "page /ws\n")
  local out = py_ws(mgr, url, [[
        await ws.send("hi")
        out(await recv(ws))
]])
  T.eq(out, "hi\n", "the handshake is still upgraded")
  mgr:close()
  -- Without opts.http: 404 elsewhere, 426 on the path.
  mgr, l = ws_server({ on_message = echo })
  base = "http://127.0.0.1:" .. l:port()
  T.eq(assert(mgr:fetch(base .. "/other")).status, 404, "another path without opts.http")
  T.eq(assert(mgr:fetch(base .. "/ws")).status, 426, "a plain GET of the path without opts.http")
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

T.test("ws.request: the upgrade request's path, query and headers in on_open, and after the close", function()
  local seen, late, late_query, late_header, lazy
  local opened = 0
  local mgr, _, url = ws_server({
    on_open = function(ws)
      opened = opened + 1
      -- Nothing is made for ws.request and ws.state until they are read.
      lazy = lazy ~= false and rawget(ws, "request") == nil and rawget(ws, "state") == nil
      ws.state.n = opened
      if opened == 2 then
        return -- its request is read only at its close
      end
      local r = ws.request
      seen = {
        method = r.method, path = r.path, query = r.query, test = r.headers["x-test-header"],
        ua = r.headers["user-agent"], ip = r.remote_ip, port = r.remote_port,
      }
      ws:send("path=" .. r.path .. " x=" .. tostring(r.headers["x-test-header"]))
    end,
    on_close = function(ws)
      if ws.state.n == 2 then
        late = ws.request
        late_query, late_header = late.query, late.headers["x-test-header"]
      end
    end,
  })
  local out = py(mgr, url, [[
async def main():
    async with connect(URL + "?room=blue&n=1", extra_headers={"X-Test-Header": "hello-123"}) as ws:
        out(await recv(ws))
    async with connect(URL + "?late=1", extra_headers={"X-Test-Header": "later"}) as ws:
        await ws.ping()
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
  T.ok(T.poll_until(mgr, function() return late ~= nil end, 3000), "the second WebSocket closed")
  T.eq(late_query, "late=1", "query first read after the close")
  T.eq(late_header, "later", "headers first read after the close")
  T.eq(late.method, "GET")
  T.eq(late.remote_ip, "127.0.0.1", "the peer's address after the close")
  T.match(late.remote_addr, "^127%.0%.0%.1:%d+$")
  T.ok(lazy, "ws.request and ws.state are made when first read")
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

---------------------------------------------------------------------------
-- Connections of a listener
---------------------------------------------------------------------------

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
  local out = py_ws(mgr, url, [[
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

T.run()
