-- Debian's lua-nginx-dns (OpenResty's lua-resty-dns, as
-- nginx.dns.resolver), unmodified, on mongoose.ngx's UDP and TCP
-- cosockets, against a tiny DNS responder of this test's own (Python, UDP
-- and TCP on one loopback port); and mongoose.dns, which resolves the
-- names cosockets and the HTTP client connect to, against the same one.
local T = require("testlib")
local peers = require("testpeers")
peers.need_openresty_libs()
local H = require("testhttp").server()
local ngx = require("mongoose.ngx")
local dns = require("mongoose.dns")
local resolver = require("nginx.dns.resolver")

local mgr = H.mgr

-- The responder: A, AAAA and CNAME records, NXDOMAIN for other names, no
-- answer at all for slow.example, and for big.example a truncated UDP
-- answer (TC) whose full form (30 records) comes over TCP.
local RESPONDER = [==[
import socket, struct, sys, threading, os
port = int(sys.argv[1])
open(sys.argv[2], "w").write(str(os.getpid()))
RECORDS = {
    "test.example": [(1, "10.1.2.3"), (1, "10.1.2.4")],
    "local.example": [(1, "127.0.0.1")],
    "v6.example": [(28, "::1")],
    "alias.example": [(5, "local.example"), (1, "127.0.0.1")],
    "big.example": [(1, "10.0.0.%d" % i) for i in range(1, 31)],
}
def name_bytes(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
def answer(q, tcp):
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    pos, labels = 12, []
    while q[pos]:
        labels.append(q[pos + 1:pos + 1 + q[pos]].decode()); pos += 1 + q[pos]
    qtype, = struct.unpack("!H", q[pos + 1:pos + 3])
    question = q[12:pos + 5]
    name = ".".join(labels).lower()
    if name == "slow.example":
        return None
    recs = RECORDS.get(name)
    if recs is None:
        return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
    if name == "big.example" and not tcp:
        return struct.pack("!HHHHHH", qid, 0x8380, 1, 0, 0, 0) + question
    body = b""
    n = 0
    for rtype, value in recs:
        if rtype != qtype and rtype != 5:
            continue
        if rtype == 1:
            rdata = socket.inet_aton(value)
        elif rtype == 28:
            rdata = socket.inet_pton(socket.AF_INET6, value)
        else:
            rdata = name_bytes(value)
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
        n += 1
    return struct.pack("!HHHHHH", qid, 0x8180, 1, n, 0, 0) + question + body
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port))
t.listen(5)
def serve_tcp():
    while True:
        c, _ = t.accept()
        n, = struct.unpack("!H", c.recv(2))
        q = b""
        while len(q) < n:
            q += c.recv(n - len(q))
        a = answer(q, True)
        c.sendall(struct.pack("!H", len(a)) + a)
        c.close()
threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True)
while True:
    q, peer = u.recvfrom(512)
    a = answer(q, False)
    if a:
        u.sendto(a, peer)
]==]

local DNS_PORT = T.free_port()
T.python_daemon("dns_responder", RESPONDER, DNS_PORT)

local function new_resolver(timeout)
  return assert(resolver:new({ nameservers = { { "127.0.0.1", DNS_PORT } }, retrans = 2,
                               timeout = timeout or 2000 }))
end

local function in_task(fn)
  return T.in_task(mgr, fn)
end

T.test("A records", function()
  in_task(function()
    local answers = assert(new_resolver():query("test.example"))
    T.eq(#answers, 2, "answers")
    T.eq(answers[1].address, "10.1.2.3", "first")
    T.eq(answers[2].address, "10.1.2.4", "second")
    T.eq(answers[1].type, resolver.TYPE_A, "type")
    T.eq(answers[1].ttl, 300, "ttl")
  end)
end)

T.test("AAAA records; compress_ipv6_addr (ngx.re.sub)", function()
  in_task(function()
    local answers = assert(new_resolver():query("v6.example", { qtype = resolver.TYPE_AAAA }))
    T.eq(answers[1].type, resolver.TYPE_AAAA, "type")
    T.eq(resolver.compress_ipv6_addr(answers[1].address), "::1", "address")
  end)
end)

T.test("a CNAME and its target", function()
  in_task(function()
    local answers = assert(new_resolver():query("alias.example"))
    T.eq(answers[1].cname, "local.example", "cname")
    T.eq(answers[2].address, "127.0.0.1", "address")
  end)
end)

T.test("an unknown name: errcode 3", function()
  in_task(function()
    local answers = assert(new_resolver():query("nothing.example"))
    T.eq(answers.errcode, 3, "errcode")
    T.match(answers.errstr, "name error", "errstr")
  end)
end)

T.test("a truncated UDP answer is asked again over TCP", function()
  in_task(function()
    local answers = assert(new_resolver():query("big.example"))
    T.eq(#answers, 30, "all 30 records (from the TCP answer)")
    T.eq(answers[30].address, "10.0.0.30", "the last")
  end)
end)

T.test("a server that does not answer: a timeout after the retries", function()
  in_task(function()
    local t0 = ngx.now()
    local answers, err = new_resolver(150):query("slow.example")
    T.eq(answers, nil, "no answer")
    T.match(err, "failed to receive reply from UDP server 127%.0%.0%.1:%d+: timeout", "error")
    T.ok(ngx.now() - t0 < 2, "two tries of 150 ms")
  end)
end)

T.test("handlers resolve while other requests are served", function()
  H.routes["/resolve"] = function(req)
    local answers = assert(new_resolver():query(req:query_params("name")))
    return 200, answers[1].address
  end
  local out = H.sh("curl -sS -m 5 '" .. H.BASE .. "/resolve?name=test.example' & curl -sS -m 5 '"
                   .. H.BASE .. "/hello'; wait", 10000)
  T.match(out, "hello\n", "the plain request")
  T.match(out, "10%.1%.2%.3", "the resolved name")
end)

T.test("mongoose.dns: cosockets and fetch connect to names the server resolves", function()
  local saved = dns.nameservers
  dns.nameservers = { { "127.0.0.1", DNS_PORT } }
  dns.flush()
  local port = H.PORT
  in_task(function()
    local ip = dns.resolve("local.example")
    T.eq(ip, "127.0.0.1", "resolved")
    local r = assert(mgr:fetch("http://local.example:" .. port .. "/hello"))
    T.eq(r.body, "hello\n", "fetch by name")
    local r2 = assert(mgr:fetch("http://alias.example:" .. port .. "/hello"))
    T.eq(r2.body, "hello\n", "through a CNAME")
    local s = ngx.socket.tcp()
    local ok, err = s:connect("nothing.example", port)
    T.eq(ok, nil, "an unknown name")
    T.match(err, "nothing%.example could not be resolved %(not found%)", "error")
  end)
  dns.nameservers = saved
  dns.flush()
end)

T.run()
