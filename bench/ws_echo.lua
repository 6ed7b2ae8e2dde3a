-- ws_echo: the Lua side of the ws_echo benchmark in bench/run.sh. The
-- WebSocket echo server of bench/ws_echo_c.c written with the high-level
-- API: every WebSocket handshake is upgraded (any path) and every message
-- is sent back with its kind (text or binary); other requests get
-- http_hello.lua's 200 "hello, world\n" (bench/scale.sh loads them while
-- WebSockets are idle).
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/ws_echo.lua [port] [off]
--
-- permessage-deflate is agreed with clients that ask (the server default:
-- without context takeover) unless the second argument is "off"; "ctx"
-- keeps each connection's compression context (bench/ws_deflate.sh).
-- Listens on 127.0.0.1 only (default port 8104); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8104
local deflate = nil -- the default: on
if arg and arg[2] == "off" then
  deflate = false
elseif arg and arg[2] == "ctx" then
  deflate = { context_takeover = true }
end

local mgr = assert(mongoose.new_manager())
assert(mgr:ws_listen("http://127.0.0.1:" .. port, {
  on_message = function(ws, data, is_binary)
    ws:send(data, is_binary and "binary" or "text")
  end,
  deflate = deflate,
  idle_timeout = 300000, -- keep-alive connections, as nginx's keepalive_timeout in bench/scale.sh
  http = function()
    return 200, "hello, world\n", { ["Content-Type"] = "text/plain" }
  end,
}))
mgr:run({ signals = { "INT", "TERM" } })
