-- echo: the Lua side of bench/run.sh's tcp_echo and udp_echo benchmarks.
-- The echo server of bench/echo_c.c written with the high-level API: over
-- TCP every byte read goes back to its sender, over UDP every datagram.
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/echo.lua tcp|udp [port]
--
-- Listens on 127.0.0.1 only (default port 8112 for tcp, 8114 for udp);
-- stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local proto = arg and arg[1]
local port = tonumber(arg and arg[2]) or (proto == "udp" and 8114 or 8112)
local url = string.format("%s://127.0.0.1:%d", tostring(proto), port)

local mgr = assert(mongoose.new_manager())
if proto == "tcp" then
  assert(mgr:tcp_listen(url, {
    on_data = function(conn, view)
      conn:send(view:string())
    end,
  }))
elseif proto == "udp" then
  assert(mgr:udp_listen(url, {
    on_datagram = function(sock, view)
      sock:send(view:string())
    end,
  }))
else
  io.stderr:write("usage: echo.lua tcp|udp [port]\n")
  os.exit(2)
end
mgr:run({ signals = { "INT", "TERM" } })
