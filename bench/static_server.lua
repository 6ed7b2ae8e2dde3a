-- static_server: the Lua side of bench/static.sh. The static file server of
-- bench/c_static_server.c written with the high-level API, with the default
-- options of res:serve_dir.
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/static_server.lua ROOT [port]
--
-- Listens on 127.0.0.1 only (default port 8142); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local root = assert(arg and arg[1], "usage: static_server.lua ROOT [port]")
local port = tonumber(arg[2]) or 8142

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
  return res:serve_dir(root)
end))
mgr:run({ signals = { "INT", "TERM" } })
