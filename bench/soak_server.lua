-- soak_server: the server of bench/soak.sh. One process serves HTTP
-- keep-alive requests (GET /hello) and WebSocket echo (/ws) on 127.0.0.1;
-- GET /stats reports its counters. Writes its port to the file named by
-- arg[1]; stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port_file = assert(arg and arg[1], "usage: soak_server.lua PORT_FILE")
local requests, messages, opened, closed, errors = 0, 0, 0, 0, 0

local mgr = assert(mongoose.new_manager({
  log = function(level, msg)
    if level == "error" then
      errors = errors + 1
      io.stderr:write("soak_server: ", msg, "\n")
    end
  end,
}))
local listener = assert(mgr:ws_listen("http://127.0.0.1:0", {
  path = "/ws",
  on_open = function()
    opened = opened + 1
  end,
  on_message = function(ws, data, is_binary)
    messages = messages + 1
    ws:send(data, is_binary and "binary" or "text")
  end,
  on_close = function()
    closed = closed + 1
  end,
  http = function(req)
    if req.path == "/stats" then
      collectgarbage()
      return 200, string.format("requests %d\nmessages %d\nopened %d\nclosed %d\nerrors %d\nlua_kb %d\n",
                                requests, messages, opened, closed, errors, collectgarbage("count"))
    end
    requests = requests + 1
    return 200, "hello, world\n", { ["Content-Type"] = "text/plain" }
  end,
}))
local f = assert(io.open(port_file .. ".tmp", "w"))
f:write(listener:port(), "\n")
f:close()
os.rename(port_file .. ".tmp", port_file)
mgr:run({ signals = { "INT", "TERM" } })
