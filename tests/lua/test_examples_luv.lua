-- examples/luv_server.lua: a Mongoose HTTP server, a luv TCP line server
-- and a luv timer in one luv loop, stopped by SIGTERM. Skipped when
-- require("luv") fails.
local T = require("testlib")
local E = require("testexamples")

if not pcall(require, "luv") then
  T.skip('require("luv") failed under this LuaJIT (apt-get install lua-luv)')
end
T.test("luv server: HTTP, the luv line server and a luv timer in one loop; SIGTERM stops it", function()
  -- Needs PORT and PORT+1 free.
  local port
  for _ = 1, 20 do
    local out = T.run_client(nil, T.python .. [[ -c "
import socket
a = socket.socket(); a.bind(('127.0.0.1', 0)); p = a.getsockname()[1]
b = socket.socket()
try:
    b.bind(('127.0.0.1', p + 1)); print(p)
except OSError:
    print(0)"]])
    port = tonumber(out)
    if port and port > 0 and port < 65535 then break end
  end
  assert(port and port > 0, "no two free ports in a row")
  local job, pidfile = E.start("luv_server.lua", "PORT=" .. port)
  local base = "http://127.0.0.1:" .. port
  E.wait_until_serving(base .. "/")

  local page, rc = T.run_client(nil, "curl -s -i " .. base .. "/")
  T.eq(rc, 0, "curl exit")
  T.match(page, "^HTTP/1.1 200")
  T.match(page, "hello from Mongoose inside a luv loop: %d+ ticks\n$")
  local status = T.run_client(nil, "curl -s " .. base .. "/api/status")
  T.match(status, '^{"ticks":%d+,"uptime_ms":%d+,"line_clients":0,"mongoose":"7%.%d+"}$')
  local slow, slow_rc = T.run_client(nil, "curl -s --max-time 5 " .. base .. "/slow")
  T.eq(slow_rc, 0, "curl /slow exit")
  T.eq(slow, "slow reply from a luv timer\n")

  -- The line server (luv TCP on PORT+1), while an HTTP request is in flight.
  local lines = T.run_client(nil, T.python .. [[ -c "
import socket, urllib.request
s = socket.create_connection(('127.0.0.1', ]] .. (port + 1) .. [[), timeout=5)
s.sendall(b'hello\ntime\n')
f = s.makefile('rb')
print(f.readline().decode().strip())
print(f.readline().decode().strip())
print(urllib.request.urlopen('http://127.0.0.1:]] .. port .. [[/api/status', timeout=5).read().decode())
s.sendall(b'quit\n')
print(f.readline().decode().strip())
print(repr(f.read()))"]])
  T.match(lines, "^echo: hello\ntime: %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ\n")
  T.match(lines, '"line_clients":1')
  T.match(lines, "\nbye\nb''\n$")

  E.stopped_ok(job, pidfile, "TERM", "luv_server: HTTP on http://127%.0%.0%.1:" .. port
               .. ", line server on 127%.0%.0%.1:" .. (port + 1),
               "luv_server: sigterm received, stopping\nluv_server: stopped\n$")
end)

T.run()
