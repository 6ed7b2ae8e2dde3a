-- UDP servers and clients of mongoose.net against real peers on loopback:
-- python3 sockets, nc and socat, and the project's own client; IPv4 and
-- IPv6; 1000 datagrams with none lost; sender addresses (from), replies
-- with send and send_to, and mongoose.address; datagrams larger than
-- Mongoose's I/O buffer, and one the kernel refuses.
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local run_py = P.run

local new_mgr, mgr_test = T.managers({ log_level = "warn" })
local _, quiet_test = T.managers({ log_level = "error" })
local py, pyfile = T.python, P.file
-- An echo server; records every datagram and sender.
local function echo_server(mgr, url)
  local seen = { count = 0, froms = {}, payloads = {} }
  local sock = assert(mgr:udp_listen(url or "udp://127.0.0.1:0", {
    on_datagram = function(s, view, from)
      seen.count = seen.count + 1
      if seen.count <= 20 then
        seen.froms[#seen.froms + 1] = { str = from:string(), ip = from:ip(), port = from:port() }
        seen.payloads[#seen.payloads + 1] = view:string()
      end
      assert(s:send(view:string()))
    end,
  }))
  return sock, seen
end

local ECHO_CLIENT = [[
import socket, sys
host, port, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(msg, (host, port))
data, addr = s.recvfrom(65536)
print(data.decode(), s.getsockname()[1], addr[1])
]]

-- Sends N numbered 64-byte datagrams in windows of W, waiting for the echo
-- of each window before the next; a lost datagram is a timeout.
local WINDOW_CLIENT = [[
import socket, sys
host, port, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(3)
got = set()
for base in range(0, n, w):
    pending = set(range(base, min(n, base + w)))
    for i in sorted(pending):
        s.sendto((b'%06d' % i).ljust(64, b'.'), (host, port))
    while pending:
        data, _ = s.recvfrom(2048)
        assert len(data) == 64 and data.endswith(b'.'), data
        i = int(data[:6])
        pending.discard(i)
        got.add(i)
print(len(got))
]]

---------------------------------------------------------------------------
-- Echo and sender addresses
---------------------------------------------------------------------------

mgr_test("python client, IPv4 echo and the sender's address", function(mgr)
  local sock, seen = echo_server(mgr)
  local port = sock:port()
  T.ok(port > 0, "bound port")
  T.match(sock:local_addr(), "^127%.0%.0%.1:%d+$")
  local out = P.check(mgr, ECHO_CLIENT, "127.0.0.1 " .. port .. " hello-udp")
  local text, client_port, server_port = out:match("^(%S+) (%d+) (%d+)")
  T.eq(text, "hello-udp", "echo")
  T.eq(tonumber(server_port), port, "reply came from the listening port")
  T.eq(seen.count, 1)
  T.eq(seen.payloads[1], "hello-udp")
  T.eq(seen.froms[1].ip, "127.0.0.1", "from:ip()")
  T.eq(seen.froms[1].port, tonumber(client_port), "from:port()")
  T.eq(seen.froms[1].str, "127.0.0.1:" .. client_port, "from:string()")
end)

mgr_test("python client, IPv6 echo alongside IPv4", function(mgr)
  local s4 = echo_server(mgr, "udp://127.0.0.1:0")
  local s6, seen6 = echo_server(mgr, "udp://[::1]:0")
  T.match(s6:local_addr(), "^%[::1%]:%d+$")
  local out = P.check(mgr, ECHO_CLIENT, "::1 " .. s6:port() .. " over-v6")
  local _, client_port = out:match("^(%S+) (%d+)")
  T.match(out, "^over%-v6 ")
  T.eq(seen6.froms[1].port, tonumber(client_port), "from:port() of an IPv6 sender")
  out = run_py(mgr, ECHO_CLIENT, "127.0.0.1 " .. s4:port() .. " over-v4")
  T.match(out, "^over%-v4 ")
end)

-- Each python run below is a new socket whose first datagram is also the
-- listener's first: the sender must read back as [::1], not [::].
mgr_test("IPv6 sender address of a listener's first datagram", function(mgr)
  local s6, seen6 = echo_server(mgr, "udp://[::1]:0")
  local out = P.check(mgr, [[
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(5)
for m in (b'first', b'second'):
    s.sendto(m, ('::1', port))
    s.recvfrom(100)
print(s.getsockname()[1])
]], tostring(s6:port()))
  local client = "[::1]:" .. tonumber(out)
  T.eq(seen6.froms[2].str, client, "second datagram's from")
  T.eq(seen6.froms[1].str, client, "first datagram's from")
  T.eq(seen6.froms[1].ip, "::1", "first datagram's from:ip()")
end)

mgr_test("nc and socat clients", function(mgr)
  local sock, seen = echo_server(mgr)
  local port = sock:port()
  -- nc -u -w 1: quit 1 s after the last datagram came back.
  local out, rc, err = T.run_client(mgr, "printf 'ping from nc' | timeout 10 nc -u -w 1 127.0.0.1 " .. port)
  T.eq(rc, 0, "nc exit: " .. err)
  T.eq(out, "ping from nc", "nc echo")
  out, rc, err = T.run_client(mgr, "printf 'ping from socat' | timeout 10 socat -t 1 - UDP:127.0.0.1:"
                              .. port)
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "ping from socat", "socat echo")
  local s6 = echo_server(mgr, "udp://[::1]:0")
  out, rc, err = T.run_client(mgr, "printf 'v6 socat' | timeout 10 socat -t 1 - UDP6:[::1]:" .. s6:port())
  T.eq(rc, 0, "socat exit: " .. err)
  T.eq(out, "v6 socat", "socat IPv6 echo")
  T.eq(seen.count, 2)
end)

---------------------------------------------------------------------------
-- Volume
---------------------------------------------------------------------------

mgr_test("1000 datagrams from python, windows of 50, none lost", function(mgr)
  local seqs, dup = {}, 0
  local sock = assert(mgr:udp_listen("udp://127.0.0.1:0", {
    on_datagram = function(s, view)
      local data = view:string()
      local i = tonumber(data:sub(1, 6))
      if seqs[i] then
        dup = dup + 1
      end
      seqs[i] = true
      s:send(data)
    end,
  }))
  local out, rc, err = run_py(mgr, WINDOW_CLIENT, "127.0.0.1 " .. sock:port() .. " 1000 50", 60000)
  T.eq(rc, 0, "python exit (a timeout means a lost datagram): " .. err)
  T.eq(tonumber(out), 1000, "echoes received by python")
  local n = 0
  for i = 0, 999 do
    n = n + (seqs[i] and 1 or 0)
  end
  T.eq(n, 1000, "distinct datagrams at the server")
  T.eq(dup, 0, "duplicates")
end)

mgr_test("1000 datagrams over IPv6 from python", function(mgr)
  local sock, seen = echo_server(mgr, "udp://[::1]:0")
  local out = P.check(mgr, WINDOW_CLIENT, "::1 " .. sock:port() .. " 1000 50", 60000)
  T.eq(tonumber(out), 1000)
  T.eq(seen.count, 1000)
end)

-- The project's own client: windows of 50 datagrams, each window waits
-- for its echoes.
local function own_client_run(mgr, url, n, window)
  local got, count = {}, 0
  local client = assert(mgr:udp_connect(url, {
    on_datagram = function(_, view, from)
      local i = tonumber(view:string():sub(1, 6))
      if i and not got[i] then
        got[i] = from:string()
        count = count + 1
      end
    end,
  }))
  for base = 0, n - 1, window do
    local last = math.min(n, base + window) - 1
    for i = base, last do
      assert(client:send(string.format("%06d", i) .. string.rep("-", 58)))
    end
    T.ok(T.poll_until(mgr, function() return count == last + 1 end, 3000),
      "window " .. base .. ": " .. count .. " of " .. (last + 1))
  end
  client:close()
  return got, count
end

mgr_test("own client against own server: 1000 datagrams, IPv4 and IPv6", function(mgr)
  local s4, seen4 = echo_server(mgr, "udp://127.0.0.1:0")
  local s6, seen6 = echo_server(mgr, "udp://[::1]:0")
  local got4, n4 = own_client_run(mgr, "udp://127.0.0.1:" .. s4:port(), 1000, 50)
  T.eq(n4, 1000, "IPv4 echoes")
  T.eq(seen4.count, 1000)
  T.eq(got4[0], "127.0.0.1:" .. s4:port(), "from of a reply is the server")
  local got6, n6 = own_client_run(mgr, "udp://[::1]:" .. s6:port(), 1000, 50)
  T.eq(n6, 1000, "IPv6 echoes")
  T.eq(seen6.count, 1000)
  T.eq(got6[999], "[::1]:" .. s6:port())
end)

---------------------------------------------------------------------------
-- Addresses and sizes
---------------------------------------------------------------------------

mgr_test("from:copy() outlives the callback; send_to with an address or a string", function(mgr)
  local saved
  local sock = assert(mgr:udp_listen("udp://127.0.0.1:0", {
    on_datagram = function(_, view, from)
      if view:string() == "later" then
        saved = from:copy()
      end
    end,
  }))
  local sent_direct
  local job = T.spawn("timeout 30 " .. py .. " " .. pyfile([[
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
s.settimeout(10)
open(sys.argv[2], 'w').write(str(s.getsockname()[1]))
s.sendto(b'later', ('127.0.0.1', int(sys.argv[1])))
a, _ = s.recvfrom(100)
b, _ = s.recvfrom(100)
print(a.decode(), b.decode())
]]) .. " " .. sock:port() .. " " .. T.tmpdir() .. "/udp_port.txt")
  T.ok(T.poll_until(mgr, function() return saved ~= nil end), "got the datagram")
  -- Outside any callback: reply from a timer to the copied address.
  mgr:set_timeout(20, function()
    assert(sock:send_to(saved, "from-timer"))
    local port = T.read_file(T.tmpdir() .. "/udp_port.txt")
    sent_direct = assert(sock:send_to("127.0.0.1:" .. port, "by-string"))
  end)
  local out, rc, err = T.wait(job, mgr, 20000)
  T.eq(rc, 0, "python exit: " .. err)
  T.eq(out, "from-timer by-string\n")
  T.eq(sent_direct, true)
  T.eq(saved:ip(), "127.0.0.1")
  T.match(tostring(saved), "^127%.0%.0%.1:%d+$")
end)

mgr_test("a large datagram is echoed intact", function(mgr)
  local sock = echo_server(mgr)
  local out = P.check(mgr, [[
import hashlib, os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
data = os.urandom(8000)
s.sendto(data, ('127.0.0.1', int(sys.argv[1])))
back, _ = s.recvfrom(65536)
print(len(back), back == data)
]], tostring(sock:port()))
  T.eq(out, "8000 True\n")
end)

T.test("mongoose.address and send_to errors", function()
  local a = assert(mongoose.address("127.0.0.1:8080"))
  T.eq(a:ip(), "127.0.0.1")
  T.eq(a:port(), 8080)
  T.eq(a:string(), "127.0.0.1:8080")
  local b = assert(mongoose.address("[::1]:53"))
  T.eq(b:ip(), "::1")
  T.eq(b:port(), 53)
  T.eq(tostring(b), "[::1]:53")
  for _, bad in ipairs({ "nonsense", "127.0.0.1", "[::1", "1.2.3.4:notaport" }) do
    local x, err = mongoose.address(bad)
    T.eq(x, nil, bad)
    T.match(err, "invalid address", bad)
  end
  T.raises("address must be a string", mongoose.address, 42)
  local mgr = new_mgr()
  local sock = echo_server(mgr)
  local ok, err = sock:send_to("not an address", "x")
  T.eq(ok, nil)
  T.match(err, "invalid address")
  T.raises("data must be a string", function() sock:send_to("127.0.0.1:9", 1) end)
  T.raises("to must be an address", function() sock:send_to(42, "x") end)
  sock:close()
  ok, err = sock:send_to("127.0.0.1:9", "x")
  T.eq(ok, nil, "send_to after close")
  T.eq(err, "closed")
  mgr:close()
end)

quiet_test("UDP datagrams larger than Mongoose's I/O buffer arrive whole", function(mgr)
  local sizes = {}
  local sock = assert(mgr:udp_listen("udp://127.0.0.1:0", {
    on_datagram = function(s, view)
      sizes[#sizes + 1] = view.len
      assert(s:send(view:string()))
    end,
  }))
  local out = P.check(mgr, P.HTTP .. [[
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for n in (20000, 60000, 65507, 100):
    data = bytes(i % 251 for i in range(n))
    s.sendto(data, ("127.0.0.1", PORT))
    echo, _ = s.recvfrom(70000)
    print(n, len(echo), echo == data)
]], sock:port())
  T.eq(out, "20000 20000 True\n60000 60000 True\n65507 65507 True\n100 100 True\n")
  T.eq(table.concat(sizes, " "), "20000 60000 65507 100", "sizes seen by on_datagram")
end)

quiet_test("a datagram the kernel refuses (over 65507 bytes) is nil, err; the socket goes on", function(mgr)
  -- Mongoose's own send path closes the whole connection on such an error:
  -- for a udp:// listener that would end the service for every peer.
  local got = {}
  local server = assert(mgr:udp_listen("udp://127.0.0.1:0", {
    on_datagram = function(s, view)
      got[#got + 1] = view:string()
      assert(s:send(string.rep("y", 70000)) == nil) -- refused: the listener stays
      assert(s:send("reply to " .. view:string()))
    end,
  }))
  local replies = {}
  local client = assert(mgr:udp_connect("udp://127.0.0.1:" .. server:port(), {
    on_datagram = function(_, view) replies[#replies + 1] = view:string() end,
  }))
  local too_big = string.rep("x", 70000)
  local ok, err = client:send(too_big) -- mgffi_send
  T.eq(ok, nil, "send")
  T.match(err, "^datagram not sent: Message too long")
  ok, err = client:send_to("127.0.0.1:" .. server:port(), too_big) -- mgffi_udp_send_to
  T.eq(ok, nil, "send_to")
  T.match(err, "^datagram not sent: Message too long")
  T.eq(client:send("fits"), true, "the socket still works")
  local _, port = client:local_addr()
  T.ok(port > 0, "the client's port is known after its first datagram: " .. tostring(port))
  T.ok(T.poll_until(mgr, function() return #replies == 1 end, 3000), "the listener answered")
  T.eq(got[1], "fits")
  T.eq(replies[1], "reply to fits")
  T.eq(client:send("again"), true)
  T.ok(T.poll_until(mgr, function() return #replies == 2 end, 3000), "and answers again")
end)

T.run()
