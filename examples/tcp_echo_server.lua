-- A TCP echo server: every byte a client sends comes back to it.
--
--   PORT=9000 HOST=127.0.0.1 luajit examples/tcp_echo_server.lua
--   printf 'hello\n' | nc -N 127.0.0.1 9000
--
-- HOST may be an IPv6 address (HOST=::1). Stops cleanly on SIGINT (Ctrl-C)
-- or SIGTERM.
local mongoose = require("mongoose")

local host, port = os.getenv("HOST") or "127.0.0.1", tonumber(os.getenv("PORT") or "9000")
if not port then
  io.stderr:write("PORT must be a number\n")
  os.exit(2)
end
local url = (host:find(":", 1, true) and "tcp://[%s]:%d" or "tcp://%s:%d"):format(host, port)

local mgr = assert(mongoose.new_manager({ log_level = "info" }))
local clients, bytes = 0, 0

local listener, err = mgr:tcp_listen(url, {
  on_accept = function(conn)
    clients = clients + 1
    mgr:log("info", "tcp echo: " .. conn:remote_addr() .. " connected")
  end,
  on_data = function(conn, view)
    bytes = bytes + view.len
    conn:send(view:string())
    -- Stop reading while a slow client has a lot to catch up on.
    if not conn.paused and conn:send_queued() > 4 * 1024 * 1024 then
      conn:pause()
      local check
      check = mgr:set_interval(10, function()
        if conn.closed or conn:send_queued() < 1024 * 1024 then
          check:cancel()
          conn:resume()
        end
      end)
    end
  end,
  on_close = function(conn, why)
    mgr:log("info", "tcp echo: " .. tostring(conn:remote_addr()) .. " left" .. (why and (": " .. why) or ""))
  end,
})
if not listener then
  io.stderr:write("tcp echo: ", err, "\n")
  os.exit(1)
end

print(string.format("tcp echo: serving on tcp://%s (Ctrl-C to stop)", (listener:local_addr())))
io.stdout:flush()
mgr:run({ signals = { "INT", "TERM" } })
print(string.format("tcp echo: stopped after %d clients, %d bytes", clients, bytes))
