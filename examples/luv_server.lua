-- A Mongoose HTTP server and plain luv (libuv) handles sharing one event
-- loop: mgr:attach_luv(uv) lets uv.run serve Mongoose's connections, next
-- to a luv timer, a luv TCP server and luv signal handles.
--
--   PORT=8080 luajit examples/luv_server.lua      (needs lua-luv)
--
-- HTTP on 127.0.0.1:PORT (default 8080):
--   /            a text page with the number of timer ticks so far
--   /api/status  the same as JSON, plus the open line-server connections
--   /slow        a reply deferred to a luv timer (200 ms later)
-- A line server (luv TCP) on 127.0.0.1:PORT+1: each line is answered with
-- "echo: <line>"; the line "time" with "time: <UTC time>"; "quit" closes.
--
-- SIGINT (Ctrl-C) or SIGTERM: the manager is detached and closed, every luv
-- handle closed, and uv.run returns because nothing is left to wait for.
local uv = require("luv")
local mongoose = require("mongoose")

local host = "127.0.0.1"
local port = tonumber(os.getenv("PORT") or "8080")
if not port or port < 1 or port > 65534 then
  io.stderr:write("luv_server: PORT must be a number from 1 to 65534\n")
  os.exit(2)
end
local line_port = port + 1

local mgr = assert(mongoose.new_manager())
local started = uv.now()
local ticks = 0
local line_clients = {}  -- luv TCP handle -> true
local deferred = {}      -- luv timers of /slow replies not yet sent

-- The HTTP server (Mongoose).
local listener, err = mgr:http_listen(string.format("http://%s:%d", host, port), function(req, res)
  if req.path == "/" then
    return 200, string.format("hello from Mongoose inside a luv loop: %d ticks\n", ticks),
      { ["Content-Type"] = "text/plain" }
  elseif req.path == "/api/status" then
    return 200, string.format('{"ticks":%d,"uptime_ms":%d,"line_clients":%d,"mongoose":"%s"}',
                              ticks, uv.now() - started, mongoose.core.count(line_clients), mongoose.mongoose_version),
      { ["Content-Type"] = "application/json" }
  elseif req.path == "/slow" then
    local t = uv.new_timer()
    deferred[t] = true
    t:start(200, 0, function()
      deferred[t] = nil
      t:close()
      res:send(200, "slow reply from a luv timer\n", { ["Content-Type"] = "text/plain" })
    end)
    return  -- answered later
  end
  return 404, "not found\n"
end)
if not listener then
  io.stderr:write("luv_server: HTTP on port ", port, ": ", err, "\n")
  os.exit(1)
end
assert(mgr:attach_luv(uv))

-- A luv timer.
local ticker = uv.new_timer()
ticker:start(1000, 1000, function()
  ticks = ticks + 1
end)

-- The line server (luv TCP).
local line_server = uv.new_tcp()
local ok, bind_err = line_server:bind(host, line_port)
if ok then
  ok, bind_err = line_server:listen(64, function(lerr)
    if lerr then
      return
    end
    local client = uv.new_tcp()
    if not line_server:accept(client) then
      client:close()
      return
    end
    line_clients[client] = true
    local pending = ""
    local function close_client()
      line_clients[client] = nil
      if not client:is_closing() then
        client:close()
      end
    end
    client:read_start(function(rerr, chunk)
      if rerr or not chunk then
        close_client()
        return
      end
      pending = pending .. chunk
      if #pending > 65536 then
        close_client()
        return
      end
      for line in pending:gmatch("([^\n]*)\n") do
        line = line:gsub("\r$", "")
        if line == "quit" then
          client:write("bye\n")
          client:shutdown(close_client)
          return
        elseif line == "time" then
          client:write("time: " .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. "\n")
        else
          client:write("echo: " .. line .. "\n")
        end
      end
      pending = pending:match("[^\n]*$")
    end)
  end)
end
if not ok then
  io.stderr:write("luv_server: line server on port ", line_port, ": ", tostring(bind_err), "\n")
  mgr:close()
  os.exit(1)
end

-- Stopping: signal handles run in the loop like any other callback.
local signals = {}
local function stop(signame)
  print("luv_server: " .. signame .. " received, stopping")
  mgr:detach_luv()
  mgr:close()
  for t in pairs(deferred) do
    t:close()
  end
  for client in pairs(line_clients) do
    client:close()
  end
  ticker:close()
  line_server:close()
  for _, s in ipairs(signals) do
    s:close()
  end
  -- Nothing is left: uv.run returns once the close callbacks have run.
end
for _, signame in ipairs({ "sigint", "sigterm" }) do
  local s = uv.new_signal()
  s:start(signame, stop)
  signals[#signals + 1] = s
end

print(string.format("luv_server: HTTP on http://%s:%d, line server on %s:%d (Ctrl-C to stop)",
                    host, port, host, line_port))
io.stdout:flush()
uv.run()
print("luv_server: stopped")
