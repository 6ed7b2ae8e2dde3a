-- http_hello: the Lua side of bench/run.sh. The hello-world server of
-- bench/c_hello_server.c written with the high-level API: every request
-- gets 200 "hello, world\n" (text/plain).
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/http_hello.lua [port]
--
-- Listens on 127.0.0.1 only (default port 8102); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8102

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
  return 200, "hello, world\n", { ["Content-Type"] = "text/plain" }
end))
mgr:run({ signals = { "INT", "TERM" } })
