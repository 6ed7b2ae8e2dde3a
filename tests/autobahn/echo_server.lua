-- The library as Autobahn's testee server, for running the port by hand:
--   scripts/lua-env.sh luajit tests/autobahn/echo_server.lua 9001
--   python3 tests/autobahn/fuzzingclient.py ws://127.0.0.1:9001/
-- Echoes every message as it came (text as text, binary as binary), and
-- allows Autobahn's largest message (16 MiB).
local mongoose = require("mongoose")

local mgr = assert(mongoose.new_manager())
local l = assert(mgr:ws_listen("http://127.0.0.1:" .. (arg[1] or "9001"), {
  max_message = 16 * 1024 * 1024,
  on_message = function(ws, data, is_binary)
    ws:send(data, is_binary and "binary" or "text")
  end,
}))
print("echo server on ws://127.0.0.1:" .. l:port() .. "/")
io.stdout:flush()
mgr:run()
