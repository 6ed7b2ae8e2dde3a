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

---------------------------------------------------------------------------
-- Sleeping WebSockets (mongoose.websocket: an idle one nobody refers to
-- holds no object of its own)
---------------------------------------------------------------------------

-- The server ids of l's WebSockets that are asleep (their owner is a
-- Sleeper), and how many objects mgr.ws_awake still holds.
local Sleeper = require("mongoose.websocket").Sleeper
local function asleep(mgr)
  local n, awake = 0, 0
  for _, owner in pairs(mgr.owners) do
    if getmetatable(owner) == Sleeper then
      n = n + 1
    end
  end
  for _ in pairs(mgr.ws_awake or {}) do
    awake = awake + 1
  end
  return n, awake
end

T.test("an idle WebSocket sleeps; its next event finds the same fields, object and state", function()
  local kept             -- the first WebSocket: the application keeps it
  local opened, seen, closes = {}, {}, {}
  local function fields(ws)
    return table.concat({ ws.id, tostring(ws.open), tostring(ws.compressed), ws.extensions,
                          tostring(ws.protocol), tostring(ws.listener ~= nil) }, " ")
  end
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", {
    path = "/ws", protocols = { "chat" },
    on_open = function(ws)
      kept = kept or ws
      opened[#opened + 1] = fields(ws)
    end,
    on_message = function(ws, data)
      if data == "pin" then
        ws.count = 0 -- a field of its own: it stays awake from now on
      elseif data == "count" then
        ws.count = ws.count + 1
      end
      seen[#seen + 1] = { fields = fields(ws), kept = ws == kept, count = ws.count, data = data }
      ws:send("echo " .. data)
    end,
    on_close = function(ws, code, reason)
      closes[#closes + 1] = ws.id .. " " .. code .. " " .. reason
    end,
  }))
  local url = "ws://127.0.0.1:" .. l:port() .. "/ws"
  local got, clients = {}, {}
  for i = 1, 3 do
    clients[i] = assert(mgr:ws_connect(url, {
      protocols = { "chat" }, deflate = true,
      on_message = function(_, data)
        got[#got + 1] = i .. ":" .. data
      end,
    }))
  end
  T.ok(T.poll_until(mgr, function() return #opened == 3 and asleep(mgr) == 3 end, 3000),
       "three WebSockets opened and asleep")
  T.match(opened[1], "^%d+ true true permessage%-deflate.* chat true$", "the fields in on_open")
  collectgarbage()
  collectgarbage()
  local n, awake = asleep(mgr)
  T.eq(n, 3, "asleep after a full collection")
  T.eq(awake, 1, "only the object the application keeps is left")
  -- 1. A message to one nobody kept: a new object, equal in every field.
  local function say(i, data, count)
    clients[i]:send(data)
    T.ok(T.poll_until(mgr, function() return #got >= count end, 3000), "reply to " .. data)
    return seen[#seen]
  end
  local s = say(2, "hello", 1)
  T.eq(s.fields, opened[2], "woken with the fields it had at on_open")
  T.eq(s.kept, false)
  -- 2. The kept one: the same object.
  s = say(1, "again", 2)
  T.eq(s.fields, opened[1])
  T.eq(s.kept, true, "the object the application keeps is the one its events go to")
  -- 3. A field of its own keeps it awake, across collections.
  say(3, "pin", 3)
  collectgarbage()
  collectgarbage()
  s = say(3, "count", 4)
  T.eq(s.count, 1, "its own field survived a full collection")
  T.eq(select(1, asleep(mgr)), 2, "two still asleep")
  -- 4. broadcast, websocket_connections and mgr:ws_send reach sleeping ones.
  T.eq(l:broadcast("all"), 3, "broadcast to all three")
  T.eq(l:broadcast("not 1", "text", kept), 2, "broadcast except the kept object")
  local conns = 0
  for id, ws in pairs(l:websocket_connections()) do
    conns = conns + 1
    T.eq(ws.id, id, "websocket_connections gives the objects")
  end
  T.eq(conns, 3, "websocket_connections lists the sleeping ones")
  local sleeping_id = tonumber(opened[2]:match("^%d+"))
  T.ok(mgr:ws_send(sleeping_id, "by id"), "ws_send to a sleeping WebSocket")
  T.ok(T.poll_until(mgr, function() return #got >= 10 end, 3000), "all of them arrived")
  table.sort(got)
  T.eq(table.concat(got, ","), "1:all,1:echo again,2:all,2:by id,2:echo hello,2:not 1,3:all,"
                               .. "3:echo count,3:echo pin,3:not 1", "what the clients got")
  -- 5. A close from the client: on_close of the woken object with its code.
  collectgarbage()
  clients[2]:close(4001, "bye")
  T.ok(T.poll_until(mgr, function() return #closes == 1 end, 3000), "on_close ran")
  T.eq(closes[1], sleeping_id .. " 4001 bye", "on_close's code and reason")
  T.eq(mgr.owners[sleeping_id], nil, "forgotten after the close")
  T.eq(mgr.ws_awake[sleeping_id], nil, "nor kept awake")
  -- 6. A close from the server, after which nothing refers to the object:
  -- closing is a field of its own, so the object and its close code stay.
  local id1 = kept.id
  kept:close(4002, "server side")
  kept = nil
  collectgarbage()
  T.eq(getmetatable(mgr.owners[id1]), require("mongoose.websocket").WebSocket,
       "a closing WebSocket is awake")
  T.ok(T.poll_until(mgr, function() return #closes == 2 end, 3000), "on_close of the server's close")
  T.eq(closes[2], id1 .. " 4002 server side", "its code and reason")
  mgr:close()
end)

T.test("res:upgrade: a shared opts table's WebSockets sleep; at most 16 opts tables per listener", function()
  local mgr = assert(mongoose.new_manager({ log_level = "error" }))
  local SHARED = { on_message = echo }
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if req.path == "/shared" then
      res:upgrade(SHARED)
    else
      res:upgrade({ on_message = echo }) -- a new table each time
    end
  end))
  local base = "ws://127.0.0.1:" .. l:port()
  local replies = 0
  local function open(path, n)
    for _ = 1, n do
      assert(mgr:ws_connect(base .. path, {
        on_open = function(ws)
          ws:send("x")
        end,
        on_message = function()
          replies = replies + 1
        end,
      }))
    end
  end
  open("/shared", 5)
  open("/fresh", 20)
  T.ok(T.poll_until(mgr, function() return replies == 25 end, 5000), "every WebSocket echoed")
  local n = asleep(mgr)
  T.eq(n, 5 + 15, "sixteen sets of handlers per listener: the shared table's five and fifteen fresh")
  T.eq(l:broadcast("all"), 25, "broadcast reaches the sleeping and the awake ones")
  T.ok(T.poll_until(mgr, function() return replies == 50 end, 3000), "all of them got it")
  mgr:close()
end)

T.run()
