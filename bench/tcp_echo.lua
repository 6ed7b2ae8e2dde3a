-- tcp_echo: the Lua side of bench/run.sh's tcp_echo benchmark. The echo
-- server of bench/tcp_echo_c.c written with the high-level API: every
-- byte read goes back to its sender.
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/tcp_echo.lua [port]
--
-- Listens on 127.0.0.1 only (default port 8112); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8112

local mgr = assert(mongoose.new_manager())
assert(mgr:tcp_listen("tcp://127.0.0.1:" .. port, {
  on_data = function(conn, view)
    conn:send(view:string())
  end,
}))
mgr:run({ signals = { "INT", "TERM" } })
