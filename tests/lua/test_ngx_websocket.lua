-- Debian's lua-nginx-websocket client (OpenResty's lua-resty-websocket,
-- as nginx.websocket.client), unmodified, on mongoose.ngx's cosockets,
-- against this manager's own WebSocket server: the handshake, text and
-- binary frames, ping/pong, the closing handshake, a 200 kB message.
local T = require("testlib")
local peers = require("testpeers")
peers.need_openresty_libs()
require("mongoose.ngx")
local client = require("nginx.websocket.client")

local mgr = T.logging_manager()
local server = assert(mgr:ws_listen("http://127.0.0.1:0", {
  path = "/ws",
  on_message = function(ws, data, is_binary)
    ws:send("echo " .. data, is_binary and "binary" or "text")
  end,
}))
local URL = "ws://127.0.0.1:" .. server:port() .. "/ws"

local function in_task(fn)
  return T.in_task(mgr, fn)
end

T.test("connect, text and binary frames, ping, close", function()
  in_task(function()
    local wb = assert(client:new({ timeout = 2000 }))
    T.eq(wb:connect(URL), 1, "handshake")
    assert(wb:send_text("hello"))
    local data, typ = wb:recv_frame()
    T.eq(data, "echo hello", "text echo")
    T.eq(typ, "text", "type")
    assert(wb:send_binary("\0\1\2"))
    data, typ = wb:recv_frame()
    T.eq(data, "echo \0\1\2", "binary echo")
    T.eq(typ, "binary", "type")
    assert(wb:send_ping("p1"))
    data, typ = wb:recv_frame()
    T.eq(typ, "pong", "pong")
    T.eq(data, "p1", "pong payload")
    assert(wb:send_close(1000, "bye"))
    local _, ctyp, code = wb:recv_frame()
    T.eq(ctyp, "close", "the server's close")
    T.eq(code, 1000, "code")
  end)
end)

local FREE = T.free_port()

T.test("a 200 kB message; a refused connection", function()
  in_task(function()
    local wb = assert(client:new({ timeout = 3000, max_payload_len = 1048576 }))
    assert(wb:connect(URL))
    local big = T.random_bytes(200000, 4)
    assert(wb:send_binary(big))
    local data = wb:recv_frame()
    T.ok(data == "echo " .. big, "200 kB echoed intact")
    wb:close()
    local other = assert(client:new({ timeout = 2000 }))
    local ok, err = other:connect("ws://127.0.0.1:" .. FREE .. "/ws")
    T.eq(ok, nil, "nothing listens there")
    T.match(err, "failed to connect: connection refused", "error")
  end)
end)

T.run()
