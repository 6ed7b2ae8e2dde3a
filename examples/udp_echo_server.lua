-- A UDP echo server: every datagram goes back to its sender.
--
--   PORT=9001 HOST=127.0.0.1 luajit examples/udp_echo_server.lua
--   printf 'hello' | nc -u -w 1 127.0.0.1 9001
--
-- HOST may be an IPv6 address (HOST=::1). Stops cleanly on SIGINT (Ctrl-C)
-- or SIGTERM.
local mongoose = require("mongoose")

local host, port = os.getenv("HOST") or "127.0.0.1", tonumber(os.getenv("PORT") or "9001")
if not port then
  io.stderr:write("PORT must be a number\n")
  os.exit(2)
end
local url = (host:find(":", 1, true) and "udp://[%s]:%d" or "udp://%s:%d"):format(host, port)

local mgr = assert(mongoose.new_manager({ log_level = "info" }))
local datagrams = 0

local sock, err = mgr:udp_listen(url, {
  on_datagram = function(s, view)
    datagrams = datagrams + 1
    s:send(view:string())
  end,
})
if not sock then
  io.stderr:write("udp echo: ", err, "\n")
  os.exit(1)
end

print(string.format("udp echo: serving on udp://%s (Ctrl-C to stop)", (sock:local_addr())))
io.stdout:flush()
mgr:run({ signals = { "INT", "TERM" } })
print(string.format("udp echo: stopped after %d datagrams", datagrams))
