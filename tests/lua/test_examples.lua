-- Runs the programs in examples/ as a user would and talks to them with
-- curl, socat, nc and python: the demo server's page and JSON endpoint,
-- PORT handling, TLS_CERT without TLS_KEY, the TCP and UDP echo servers,
-- and a clean stop on SIGTERM and SIGINT. The demo's chat, its default
-- port, its TLS mode and the luv example have files of their own
-- (test_examples_*.lua): each needs something this one does not.
local T = require("testlib")
local P = require("testpy")
local E = require("testexamples")
local free_port, start_example, serve = T.free_port, E.start, E.serve
local wait_for_line, stopped_ok = E.wait_for_line, E.stopped_ok

-- Starts examples/<script> (a TCP or UDP echo server) on a free port with
-- env, waits until it printed a line matching line (with "<port>" in it
-- replaced by the port); returns its job, pid file and port.
local function start_echo(script, env, line)
  local port = free_port()
  local job, pidfile = start_example(script, env .. "PORT=" .. port)
  wait_for_line(job, (line:gsub("<port>", port)))
  return job, pidfile, port
end

-- Runs a client command; checks it exited 0 and printed want.
local function client_says(cmd, what, want)
  local out, rc, err = T.run_client(nil, cmd)
  T.eq(rc, 0, what .. " exit: " .. err)
  T.eq(out, want)
end

-- Runs a python script (code) with the port; checks it exited 0 and
-- printed want.
local function python_says(code, port, want, what)
  local out, rc, err = P.run(nil, code, port, 35000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, want, what)
end

---------------------------------------------------------------------------
-- The demo server
---------------------------------------------------------------------------

T.test("demo server serves its page and JSON, stops on SIGTERM", function()
  local job, pidfile, port, base = serve("demo_server.lua")

  local page, rc = T.run_client(nil, "curl -s -i " .. base .. "/")
  T.eq(rc, 0, "curl exit")
  T.match(page, "^HTTP/1.1 200")
  T.match(page, "Content%-Type: text/html")
  T.match(page, "<h1>mongoose%-ffi</h1>")
  T.match(page, "/api/status")

  local json = T.run_client(nil, "curl -s -i " .. base .. "/api/status")
  T.match(json, "^HTTP/1.1 200")
  T.match(json, "Content%-Type: application/json")
  T.match(json, '"server":"mongoose%-ffi"')
  T.match(json, '"mongoose":"7%.%d+"')
  T.match(json, '"requests":%d+')

  -- The JSON parses with a real parser.
  local parsed = T.run_client(nil, "curl -s " .. base .. "/api/status | " .. T.python
    .. [[ -c "import json,sys; d=json.load(sys.stdin); ]]
    .. [[print(d['server'], d['client'].startswith('127.0.0.1:'))"]])
  T.eq(parsed, "mongoose-ffi True\n", "json parsed by python")

  local missing = T.run_client(nil, "curl -s -o /dev/null -w '%{http_code}' " .. base .. "/nope")
  T.eq(missing, "404", "unknown path")

  stopped_ok(job, pidfile, "TERM", "demo: serving on http://127%.0%.0%.1:" .. port, "demo: stopped")
end)

T.test("demo server stops on SIGINT", function()
  local job, pidfile = serve("demo_server.lua")
  stopped_ok(job, pidfile, "INT", "demo: stopped")
end)

T.test("demo server reports a port in use", function()
  local job, pidfile, port = serve("demo_server.lua")
  local second = start_example("demo_server.lua", "PORT=" .. port)
  local _, rc, err = T.wait(second, nil, 10000)
  T.eq(rc, 1, "second server exit code")
  T.match(err, "Address already in use")
  E.stop(pidfile, "TERM")
  T.wait(job, nil, 10000)
end)

-- The demo refuses to start with only one of TLS_CERT / TLS_KEY (the other
-- set empty, which counts as unset, so the caller's environment cannot
-- interfere).
T.test("demo server with only one of TLS_CERT and TLS_KEY exits 2 with a message", function()
  for _, env in ipairs({ "TLS_CERT=/nonexistent.pem TLS_KEY=", "TLS_KEY=/nonexistent.key TLS_CERT=" }) do
    local job = start_example("demo_server.lua", "PORT=" .. free_port() .. " " .. env)
    local out, rc, err = T.wait(job, nil, 10000)
    T.eq(rc, 2, "exit status with " .. env)
    T.match(err, "is set but TLS_%u+ is not: set both to serve https, or neither", "stderr")
    T.eq(out, "", "nothing served")
  end
end)

---------------------------------------------------------------------------
-- The TCP and UDP echo examples, with socat, nc and python as peers
---------------------------------------------------------------------------

T.test("tcp echo server: socat, nc and python clients, stops on SIGINT", function()
  local job, pidfile, port = start_echo("tcp_echo_server.lua", "",
                                        "tcp echo: serving on tcp://127%.0%.0%.1:<port>")
  client_says("printf 'via socat' | timeout 10 socat -t 2 - TCP:127.0.0.1:" .. port, "socat", "via socat")
  client_says("printf 'via nc\\n' | timeout 10 nc -N -q 2 127.0.0.1 " .. port, "nc", "via nc\n")
  python_says([[
import hashlib, os, socket, sys, threading
data = os.urandom(2 * 1024 * 1024)
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
threading.Thread(target=s.sendall, args=(data,)).start()
h, n = hashlib.sha256(), 0
while n < len(data):
    b = s.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.digest() == hashlib.sha256(data).digest())
]], port, "2097152 True\n", "2 MB echoed intact")
  stopped_ok(job, pidfile, "INT", "tcp echo: stopped after 3 clients, " .. (9 + 7 + 2097152) .. " bytes")
end)

T.test("tcp echo server on HOST=::1 stops on SIGTERM", function()
  local job, pidfile, port = start_echo("tcp_echo_server.lua", "HOST=::1 ", "serving on tcp://%[::1%]:<port>")
  client_says("printf 'v6' | timeout 10 socat -t 2 - TCP6:[::1]:" .. port, "socat", "v6")
  stopped_ok(job, pidfile, "TERM", "tcp echo: stopped")
end)

T.test("udp echo server: socat, nc and python clients, stops on SIGTERM", function()
  local job, pidfile, port = start_echo("udp_echo_server.lua", "",
                                        "udp echo: serving on udp://127%.0%.0%.1:<port>")
  client_says("printf 'dgram via socat' | timeout 10 socat -t 1 - UDP:127.0.0.1:" .. port, "socat",
              "dgram via socat")
  client_says("printf 'dgram via nc' | timeout 10 nc -u -w 1 127.0.0.1 " .. port, "nc", "dgram via nc")
  python_says([[
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(200):
    s.sendto(b'n%d' % i, ('127.0.0.1', int(sys.argv[1])))
    assert s.recvfrom(100)[0] == b'n%d' % i
print('200 echoed')
]], port, "200 echoed\n")
  stopped_ok(job, pidfile, "TERM", "udp echo: stopped after 202 datagrams")
end)

T.test("udp echo server stops on SIGINT; a bad PORT is refused", function()
  local job, pidfile = start_echo("udp_echo_server.lua", "", "udp echo: serving on")
  stopped_ok(job, pidfile, "INT", "udp echo: stopped after 0 datagrams")
  local bad = start_example("udp_echo_server.lua", "PORT=nope")
  local _, rc, err = T.wait(bad, nil, 10000)
  T.eq(rc, 2, "exit code for a bad PORT")
  T.match(err, "PORT must be a number")
end)

T.run()
