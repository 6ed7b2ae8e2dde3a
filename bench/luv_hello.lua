-- luv_hello: the server of bench/luv_bench.sh. The hello-world server of
-- bench/http_hello.lua (200 "hello, world\n", text/plain), driven by one of:
--
--   luv       mgr:attach_luv(uv) (epoll mode) and uv.run
--   interval  mgr:attach_luv(uv, { mode = "interval", interval = MS }) and uv.run
--   run       the manager's own loop, mgr:run()
--
--   BUILD_DIR=build-luv-bench scripts/lua-env.sh luajit bench/luv_hello.lua PORT MODE [MS]
--
-- Listens on 127.0.0.1 only; stops on SIGINT or SIGTERM (luv signal handles
-- in the luv modes).
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8102
local mode = arg and arg[2] or "luv"
local interval = tonumber(arg and arg[3]) or 10

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
  return 200, "hello, world\n", { ["Content-Type"] = "text/plain" }
end))

if mode == "run" then
  mgr:run({ signals = { "INT", "TERM" } })
  return
end

local uv = require("luv")
if mode == "luv" then
  assert(mgr:attach_luv(uv))
elseif mode == "interval" then
  assert(mgr:attach_luv(uv, { mode = "interval", interval = interval }))
else
  error("mode must be luv, interval or run")
end
local sigint, sigterm = uv.new_signal(), uv.new_signal()
local function stop()
  mgr:close()  -- detaches
  sigint:close()
  sigterm:close()
end
sigint:start("sigint", stop)
sigterm:start("sigterm", stop)
uv.run()
