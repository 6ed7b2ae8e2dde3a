-- Runs the programs in examples/ as a user would and talks to them with
-- curl and Python's websockets: the demo server's page, JSON endpoint and
-- WebSocket chat, PORT handling (and its 127.0.0.1:8000 default), TLS_CERT
-- and TLS_KEY, and a clean stop on SIGTERM and SIGINT.
local T = require("testlib")

local root = T.source_dir
local luajit = os.getenv("LUAJIT") or "luajit"

local function free_port()
  local out = T.run_client(nil, T.python
    .. [[ -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]])
  return assert(tonumber(out), "no free port")
end

-- Starts an example in the background; returns its job and pid file.
local started = 0
local function start_example(script, env)
  started = started + 1
  local pidfile = string.format("%s/%s.%d.pid", T.tmpdir(), script:gsub("%W", "_"), started)
  local cmd = string.format("%s exec %s %s/examples/%s & echo $! > %s; wait $!",
                            env, luajit, T.q(root), script, T.q(pidfile))
  local job = T.spawn(cmd)
  return job, pidfile
end

local function wait_until_serving(url)
  for _ = 1, 100 do
    local _, rc = T.run_client(nil, "curl -s -o /dev/null --max-time 1 " .. T.q(url))
    if rc == 0 then
      return true
    end
    os.execute("sleep 0.05")
  end
  error("server did not start: " .. url)
end

local function stop(pidfile, signal)
  local pid = assert(T.read_file(pidfile), "no pid file"):match("%d+")
  os.execute("kill -" .. signal .. " " .. pid)
end

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

T.test("demo server without PORT listens on 127.0.0.1:8000", function()
  -- Bound the way Mongoose binds (SO_REUSEADDR): fails only for a listener.
  local probe = T.run_client(nil, T.python .. [[ -c "
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', 8000)); print('free')
except OSError as e:
    print('busy:', e.strerror)"]])
  if not probe:find("^free") then
    print("SKIP   demo default port: 127.0.0.1:8000 is " .. probe:gsub("%s+$", ""))
    return
  end
  local job, pidfile = start_example("demo_server.lua", "unset PORT HOST TLS_CERT TLS_KEY;")
  local ok, err = pcall(function()
    local out = ""
    for _ = 1, 400 do
      out = T.read_file(job.base .. ".out") or ""
      if out:find("demo: serving on") or T.read_file(job.base .. ".rc") then break end
      os.execute("sleep 0.025")
    end
    if T.read_file(job.base .. ".rc") then
      local _, rc, stderr = T.wait(job, nil, 1000)
      if rc == 1 and stderr:find("Address already in use", 1, true) then
        print("SKIP   demo default port: 127.0.0.1:8000 was taken meanwhile")
        return
      end
      error("the demo exited with " .. tostring(rc) .. ": " .. stderr)
    end
    T.match(out, "demo: serving on http://127%.0%.0%.1:8000 ", "the default address")
    local body, rc = T.run_client(nil, "curl -s --max-time 5 http://127.0.0.1:8000/api/status")
    T.eq(rc, 0, "curl exit")
    T.match(body, '"server":"mongoose%-ffi"')
    -- Bound to 127.0.0.1, not to every address: 127.0.0.2 (loopback too) is refused.
    local _, other_rc = T.run_client(nil, "curl -s -o /dev/null --max-time 2 http://127.0.0.2:8000/")
    T.ok(other_rc ~= 0, "nothing on 127.0.0.2:8000")
    stop(pidfile, "TERM")
    local stdout, exit_code = T.wait(job, nil, 10000)
    T.eq(exit_code, 0, "exit code after SIGTERM")
    T.match(stdout, "demo: stopped")
  end)
  if not T.read_file(job.base .. ".rc") then -- a failed check: stop the demo anyway
    stop(pidfile, "KILL")
    T.wait(job, nil, 10000)
  end
  assert(ok, err)
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

T.test("demo server: WebSocket chat echoes to the sender, broadcasts to the others", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  local base = "http://127.0.0.1:" .. port
  wait_until_serving(base .. "/")

  -- The page carries the chat UI.
  local page = T.run_client(nil, "curl -s --max-time 5 " .. base .. "/")
  T.match(page, 'id="messages"', "message list")
  T.match(page, 'id="input"', "input")
  T.match(page, 'id="send"', "send button")
  T.match(page, "new WebSocket%(", "the page opens a WebSocket")
  T.match(page, "'/ws'", "to /ws")
  T.match(page, "autosend", "autosend support")

  local script = T.tmpdir() .. "/chat_clients.py"
  T.write_file(script, [[
import asyncio, json, sys, urllib.request
import websockets
URL = sys.argv[1]

async def recv(ws):
    return await asyncio.wait_for(ws.recv(), 5)

async def main():
    async with websockets.connect(URL, open_timeout=5, close_timeout=5) as a, \
               websockets.connect(URL, open_timeout=5, close_timeout=5) as b:
        status = json.load(urllib.request.urlopen(sys.argv[2], timeout=5))
        print("chat_clients", status["chat_clients"])
        await a.send("hello from a")
        print("a got:", await recv(a))
        print("b got:", await recv(b))
        await b.send("and b answers")
        print("b got:", await recv(b))
        print("a got:", await recv(a))
        try:
            m = await asyncio.wait_for(a.recv(), 0.3)
            print("a unexpected:", m)
        except asyncio.TimeoutError:
            print("a: nothing more")
        # Binary is refused with close code 1003.
        await b.send(b"\x00\x01")
        try:
            await recv(b)
        except websockets.ConnectionClosed:
            pass
        print("b closed:", b.close_code, b.close_reason)

asyncio.run(asyncio.wait_for(main(), 20))
]])
  local out, rc, err = T.run_client(nil, string.format("%s %s %s %s", T.python, T.q(script),
                                                       T.q("ws://127.0.0.1:" .. port .. "/ws"),
                                                       T.q(base .. "/api/status")), 30000)
  T.eq(rc, 0, "python client exit (" .. err .. ")")
  T.eq(out, table.concat({
    "chat_clients 2",
    "a got: you: hello from a",
    "b got: peer: hello from a",
    "b got: you: and b answers",
    "a got: peer: and b answers",
    "a: nothing more",
    "b closed: 1003 text only",
    "",
  }, "\n"), "chat transcript")

  stop(pidfile, "TERM")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(stdout, "demo: stopped")
end)

T.test("demo server stops on SIGTERM with a chat client connected", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  wait_until_serving("http://127.0.0.1:" .. port .. "/")
  local script = T.tmpdir() .. "/chat_idle.py"
  T.write_file(script, [[
import asyncio, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], open_timeout=5, close_timeout=2) as ws:
        await ws.send("hi")
        print(await asyncio.wait_for(ws.recv(), 5), flush=True)
        try:
            await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed:
            print("closed by the server")

asyncio.run(asyncio.wait_for(main(), 20))
]])
  local client = T.spawn(string.format("%s %s %s", T.python, T.q(script),
                                       T.q("ws://127.0.0.1:" .. port .. "/ws")))
  -- Wait until the client got its echo, then stop the server.
  for _ = 1, 200 do
    if (T.read_file(client.base .. ".out") or ""):find("you: hi") then
      break
    end
    os.execute("sleep 0.025")
  end
  T.match(T.read_file(client.base .. ".out") or "", "you: hi", "client connected")
  stop(pidfile, "TERM")
  local stdout, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(stdout, "demo: stopped")
  local cout, crc = T.wait(client, nil, 20000)
  T.eq(crc, 0, "client exit")
  T.match(cout, "closed by the server")
end)

-- The TCP and UDP echo examples, with socat, nc and python as peers.

-- Waits until a started example printed its "serving on" line.
local function wait_for_line(job, pattern)
  for _ = 1, 200 do
    local out = T.read_file(job.base .. ".out") or ""
    if out:find(pattern) then
      return out
    end
    if T.read_file(job.base .. ".rc") then
      error("example exited early: " .. (T.read_file(job.base .. ".err") or ""))
    end
    os.execute("sleep 0.025")
  end
  error("no line matching " .. pattern)
end

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

T.test("luv server: HTTP, the luv line server and a luv timer in one loop; SIGTERM stops it", function()
  if not pcall(require, "luv") then
    print("SKIP   luv server: require(\"luv\") failed (install lua-luv)")
    return
  end
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
  local job, pidfile = start_example("luv_server.lua", "PORT=" .. port)
  local base = "http://127.0.0.1:" .. port
  wait_until_serving(base .. "/")

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

  stop(pidfile, "TERM")
  local out, exit_code, err = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM; stderr: " .. err)
  T.match(out, "luv_server: HTTP on http://127%.0%.0%.1:" .. port
               .. ", line server on 127%.0%.0%.1:" .. (port + 1))
  T.match(out, "luv_server: sigterm received, stopping\nluv_server: stopped\n$")
end)

T.test("demo server with TLS_CERT and TLS_KEY: https (curl --cacert) and wss chat", function()
  if require("mongoose.tls").backend == "none" then
    print("SKIP   demo over TLS: no TLS backend")
    return
  end
  -- A throwaway CA and server certificate, removed at the end.
  local dir = T.run_client(nil, "mktemp -d /tmp/mgffi-demo-tls.XXXXXX"):match("%S+")
  local function pki(cmd)
    local _, rc, err = T.run_client(nil, "cd " .. T.q(dir) .. " && " .. cmd)
    assert(rc == 0, cmd .. ": " .. err)
  end
  local ok, err = pcall(function()
    pki("openssl ecparam -name prime256v1 -genkey -noout -out ca.key"
        .. " && openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=demo test CA' -out ca.pem")
    pki("openssl ecparam -name prime256v1 -genkey -noout -out srv.key && openssl req -new -key srv.key"
        .. " -subj '/CN=localhost' -out srv.csr"
        .. " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >srv.ext"
        .. " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256"
        .. " -extfile srv.ext -out srv.pem")
    local port = free_port()
    local env = string.format("PORT=%d TLS_CERT=%s TLS_KEY=%s", port, T.q(dir .. "/srv.pem"),
                              T.q(dir .. "/srv.key"))
    local job, pidfile = start_example("demo_server.lua", env)
    local cacert = "--cacert " .. T.q(dir .. "/ca.pem") .. " "
    local base = "https://localhost:" .. port
    for _ = 1, 100 do
      local _, rc = T.run_client(nil, "curl -s -o /dev/null --max-time 1 " .. cacert .. base .. "/")
      if rc == 0 then break end
      os.execute("sleep 0.05")
    end
    local page, rc, cerr = T.run_client(nil, "curl -sS -i --max-time 5 " .. cacert .. base .. "/")
    T.eq(rc, 0, "curl --cacert exit (" .. cerr .. ")")
    T.match(page, "^HTTP/1.1 200")
    T.match(page, "<h1>mongoose%-ffi</h1>")
    local _, plain_rc = T.run_client(nil, "curl -s -o /dev/null --max-time 2 http://127.0.0.1:"
                                     .. port .. "/")
    T.ok(plain_rc ~= 0, "no plain http on the TLS port")
    local chat = T.run_client(nil, T.python .. " -c " .. T.q([[
import asyncio, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx, open_timeout=5, close_timeout=5) as ws:
        await ws.send("over wss")
        print(await asyncio.wait_for(ws.recv(), 5))
asyncio.run(asyncio.wait_for(main(), 20))
]]) .. " " .. T.q("wss://localhost:" .. port .. "/ws") .. " " .. T.q(dir .. "/ca.pem"), 30000)
    T.eq(chat, "you: over wss\n", "wss chat")
    stop(pidfile, "TERM")
    local out, exit_code = T.wait(job, nil, 10000)
    T.eq(exit_code, 0, "exit code after SIGTERM")
    T.match(out, "demo: serving on https://127%.0%.0%.1:" .. port)
    T.match(out, "demo: stopped")
  end)
  os.execute("rm -rf " .. T.q(dir))
  assert(ok, err)
end)

T.run()
