-- Runs the programs in examples/ as a user would and talks to them with
-- curl, socat, nc and python: the demo server's page and JSON endpoint,
-- PORT handling, TLS_CERT without TLS_KEY, the TCP and UDP echo servers,
-- and a clean stop on SIGTERM and SIGINT. The demo's chat, its default
-- port, its TLS mode and the luv example have files of their own
-- (test_examples_*.lua): each needs something this one does not.
local T = require("testlib")
local E = require("testexamples")
local free_port, start_example, stop = T.free_port, E.start, E.stop
local wait_until_serving, wait_for_line = E.wait_until_serving, E.wait_for_line

---------------------------------------------------------------------------
-- The demo server
---------------------------------------------------------------------------

T.test("demo server serves its page and JSON, stops on SIGTERM", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  local base = "http://127.0.0.1:" .. port
  wait_until_serving(base .. "/")

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

  stop(pidfile, "TERM")
  local out, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(out, "demo: serving on http://127%.0%.0%.1:" .. port)
  T.match(out, "demo: stopped")
end)

T.test("demo server stops on SIGINT", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  wait_until_serving("http://127.0.0.1:" .. port .. "/")
  stop(pidfile, "INT")
  local out, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGINT")
  T.match(out, "demo: stopped")
end)

T.test("demo server reports a port in use", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  wait_until_serving("http://127.0.0.1:" .. port .. "/")
  local second = start_example("demo_server.lua", "PORT=" .. port)
  local _, rc, err = T.wait(second, nil, 10000)
  T.eq(rc, 1, "second server exit code")
  T.match(err, "Address already in use")
  stop(pidfile, "TERM")
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
  local port = free_port()
  local job, pidfile = start_example("tcp_echo_server.lua", "PORT=" .. port)
  wait_for_line(job, "tcp echo: serving on tcp://127%.0%.0%.1:" .. port)
  local out, rc, err = T.run_client(nil, "printf 'via socat' | timeout 10 socat -t 2 - TCP:127.0.0.1:"
                                    .. port)
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "via socat")
  out, rc, err = T.run_client(nil, "printf 'via nc\\n' | timeout 10 nc -N -q 2 127.0.0.1 " .. port)
  T.eq(rc, 0, "nc exit: " .. err)
  T.eq(out, "via nc\n")
  local script = T.tmpdir() .. "/tcp_echo_example.py"
  T.write_file(script, [[
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
]])
  out, rc, err = T.run_client(nil, "timeout 30 " .. T.python .. " " .. T.q(script) .. " " .. port, 35000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "2097152 True\n", "2 MB echoed intact")
  stop(pidfile, "INT")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGINT")
  T.match(stdout, "tcp echo: stopped after 3 clients, " .. (9 + 7 + 2097152) .. " bytes")
end)

T.test("tcp echo server on HOST=::1 stops on SIGTERM", function()
  local port = free_port()
  local job, pidfile = start_example("tcp_echo_server.lua", "HOST=::1 PORT=" .. port)
  wait_for_line(job, "serving on tcp://%[::1%]:" .. port)
  local out, rc, err = T.run_client(nil, "printf 'v6' | timeout 10 socat -t 2 - TCP6:[::1]:" .. port)
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "v6")
  stop(pidfile, "TERM")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(stdout, "tcp echo: stopped")
end)

T.test("udp echo server: socat, nc and python clients, stops on SIGTERM", function()
  local port = free_port()
  local job, pidfile = start_example("udp_echo_server.lua", "PORT=" .. port)
  wait_for_line(job, "udp echo: serving on udp://127%.0%.0%.1:" .. port)
  local out, rc, err = T.run_client(nil, "printf 'dgram via socat' | timeout 10 socat -t 1 - UDP:127.0.0.1:"
                                    .. port)
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "dgram via socat")
  out, rc, err = T.run_client(nil, "printf 'dgram via nc' | timeout 10 nc -u -w 1 127.0.0.1 " .. port)
  T.eq(rc, 0, "nc exit: " .. err)
  T.eq(out, "dgram via nc")
  local script = T.tmpdir() .. "/udp_echo_example.py"
  T.write_file(script, [[
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(200):
    s.sendto(b'n%d' % i, ('127.0.0.1', int(sys.argv[1])))
    assert s.recvfrom(100)[0] == b'n%d' % i
print('200 echoed')
]])
  out, rc, err = T.run_client(nil, "timeout 30 " .. T.python .. " " .. T.q(script) .. " " .. port, 35000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "200 echoed\n")
  stop(pidfile, "TERM")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(stdout, "udp echo: stopped after 202 datagrams")
end)

T.test("udp echo server stops on SIGINT; a bad PORT is refused", function()
  local port = free_port()
  local job, pidfile = start_example("udp_echo_server.lua", "PORT=" .. port)
  wait_for_line(job, "udp echo: serving on")
  stop(pidfile, "INT")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGINT")
  T.match(stdout, "udp echo: stopped after 0 datagrams")
  local bad = start_example("udp_echo_server.lua", "PORT=nope")
  local _, rc, err = T.wait(bad, nil, 10000)
  T.eq(rc, 2, "exit code for a bad PORT")
  T.match(err, "PORT must be a number")
end)

T.run()
