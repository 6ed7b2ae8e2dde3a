-- https_hello: the Lua side of the https_hello benchmark in bench/run.sh.
-- The HTTPS hello-world server of bench/c_https_hello.c written with the
-- high-level API: every request gets 200 "hello, world\n" (text/plain).
--
--   BUILD_DIR=build-bench scripts/lua-env.sh luajit bench/https_hello.lua CERT_FILE KEY_FILE [port]
--
-- CERT_FILE and KEY_FILE are PEM files. Listens on 127.0.0.1 only (default
-- port 8109); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local cert, key = arg and arg[1], arg and arg[2]
if not cert or not key then
  io.stderr:write("usage: https_hello.lua CERT_FILE KEY_FILE [port]\n")
  os.exit(2)
end
local port = tonumber(arg[3]) or 8109

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("https://127.0.0.1:" .. port, function()
  return 200, "hello, world\n", { ["Content-Type"] = "text/plain" }
end, { tls = { cert = cert, key = key } }))
mgr:run({ signals = { "INT", "TERM" } })
