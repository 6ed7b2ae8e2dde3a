-- udp_echo: the Lua side of bench/run.sh's udp_echo benchmark. The echo
-- server of bench/udp_echo_c.c written with the high-level API: every
-- datagram goes back to its sender.
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/udp_echo.lua [port]
--
-- Listens on 127.0.0.1 only (default port 8114); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8114

local mgr = assert(mongoose.new_manager())
assert(mgr:udp_listen("udp://127.0.0.1:" .. port, {
  on_datagram = function(sock, view)
    sock:send(view:string())
  end,
}))
mgr:run({ signals = { "INT", "TERM" } })
