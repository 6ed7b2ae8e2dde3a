-- The library's own WebSocket client (mgr:ws_connect) against its own
-- server, raw-socket peers (an empty key, a peer that stops reading) and
-- the clean-up of closed connections.
local T = require("testlib")
local W = require("testws")
local mongoose = require("mongoose")
local core = require("mongoose.core")
local ws_server, echo, byte_pattern = W.server, W.echo, W.byte_pattern

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
  local port = T.released_port(mgr)
  local errors, closes, opened = {}, {}, false
  local c, err = mgr:ws_connect("ws://127.0.0.1:" .. port .. "/ws", {
    on_open = function()
      opened = true
    end,
    on_error = W.errors_into(errors),
    on_close = W.closes_into(closes),
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
  local port, probe_closed = T.released_port(mgr)
  T.ok(probe_closed, "probe closed")
  local PATTERN = "^[^:]*test_websocket_client%.lua:%d+: max_message must be an integer"
  for _, bad in ipairs({ "1M", -1, 1.5, 0 / 0, true, 2 ^ 60 }) do
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
  T.ok(mgr:ws_listen("http://127.0.0.1:0", { max_message = 0 }), "max_message = 0 (no limit)")
  mgr:close()
end)

T.test("backpressure: send_queued grows while the peer does not read, then drains", function()
  local server_ws
  local mgr, l = ws_server({
    on_open = function(ws) server_ws = ws end,
    max_send_queue = 0, -- no cap: the queue may grow (the cap: test_hostile)
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

T.test("state freed on close: websocket_connections, mgr.owners, the objects themselves", function()
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
      in_close.ran = true
    end,
  })
  listener = l
  local client_id = open_and_close(mgr, url, weak)
  T.ok(T.poll_until(mgr, function() return in_close.ran end, 5000), "server on_close ran")
  mgr:poll(0)
  T.eq(in_close.listed_open, true, "listed while open")
  T.eq(in_close.listed, false, "not in websocket_connections() in on_close")
  T.eq(next(l:websocket_connections()), nil, "websocket_connections() after close")
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
