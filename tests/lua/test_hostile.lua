-- Hostile and broken clients against the HTTP server: malformed requests,
-- NUL bytes, absurd lengths, smuggling, slowloris, disconnects at awkward
-- moments, and handlers that misbehave. Every client is python3 on
-- loopback, run in the background while the manager in this process
-- polls; every client loop is bounded in count and time. In each test a
-- well-behaved client is served while the hostile one is active. The
-- limits themselves (431, 413, 503, 408, 1009) are in test_http_limits.lua.
local T = require("testlib")
local P = require("testpy")
local H = require("testhttp").server({ log_level = "debug" })
local mongoose = require("mongoose")
local mgr, routes, hits, PORT, BASE, handler = H.mgr, H.routes, H.hits, H.PORT, H.BASE, H.handler
local logs, find_log, kv, curl = H.logs, H.find_log, P.kv, H.curl
local py = H.pyc

local deferred = {} -- res objects the /defer route keeps without replying
routes["/echo"] = function(req)
  return 200, "got " .. #req:body()
end
local BIG = string.rep("0123456789abcdef", 5 * 65536) -- 5 MiB
routes["/big"] = function()
  return 200, BIG
end
routes["/defer"] = function(req, res)
  deferred[#deferred + 1] = { req = req, res = res }
end

-- Open connections of the manager other than the listeners.
local function open_conns()
  return mgr:connection_count()
end

local wsl = H.ws_echo(1000)

---------------------------------------------------------------------------
-- Hostile requests: each gets a 4xx or a close, never a 2xx, never a hang;
-- a good client is served while the hostile connection is open.
---------------------------------------------------------------------------

T.test("a malformed request line gets 400, and the server keeps serving", function()
  local bad = { "GARBAGE\\r\\n\\r\\n", "GET / FOO/1.1\\r\\n\\r\\n", "GET / HTTP/1.1 extra\\r\\n\\r\\n" }
  for _, line in ipairs(bad) do
    local out = H.raw('b"' .. line .. '"')
    T.match(out, "^HTTP/1%.1 400", "response to " .. line)
    T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "a good request right after " .. line)
  end
  T.ok(find_log("request rejected with 400"), "rejection logged at info level")
end)

T.test("hostile: malformed requests, NUL bytes, absurd lengths, bad chunks, smuggling", function()
  hits["/smuggled"] = nil
  local before = hits["/echo"] or 0
  local out = py([[
CASES = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("no_uri", b"GET\r\n\r\n"),
    ("bad_proto", b"GET / HTTP/9.9.9\r\n\r\n"),
    ("binary", b"\x00\x01\x02\xff\xfe\r\n\r\n"),
    ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("header_no_colon", b"GET /echo HTTP/1.1\r\nHost x\r\n\r\n"),
    ("header_empty_name", b"GET /echo HTTP/1.1\r\n: v\r\n\r\n"),
    ("nul_in_header", b"GET /echo HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n"),
    ("nul_in_name", b"GET /echo HTTP/1.1\r\nX-N\x00l: ab\r\n\r\n"),
    ("nul_in_uri", b"GET /ec\x00ho HTTP/1.1\r\n\r\n"),
    ("cl_huge", b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\nabc"),
    ("cl_2_64", b"POST /echo HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\nabc"),
    ("cl_2_64_m1", b"POST /echo HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nabc"),
    ("cl_negative", b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\nabc"),
    ("cl_text", b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\nabc"),
    ("cl_twice", b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
    ("chunk_negative", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_overflow", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk_huge", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n"),
    ("chunk_not_hex", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("te_gzip", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
    ("te_chunked_gzip", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("smuggle_cl_te", b"POST /echo HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("smuggle_te_cl", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n"
                      b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
]
for name, data in CASES:
    h = conn()
    try:
        h.sendall(data)
    except OSError:
        pass
    ok, secs = good()
    r = read_all(h, 3)
    out(name, status(r), ok)
]], PORT, 120000)
  local n, bad = 0, {}
  for name, st, good in out:gmatch("(%S+) (%S+) (%S+)\n") do
    n = n + 1
    if not (st:match("^4%d%d$") or st == "505" or st == "closed") then
      bad[#bad + 1] = name .. " got " .. st
    end
    if good ~= "True" then
      bad[#bad + 1] = name .. ": the good client was not served meanwhile"
    end
  end
  T.eq(n, 24, "cases run")
  T.eq(table.concat(bad, "; "), "", "cases without a 4xx or a close")
  T.eq(hits["/smuggled"], nil, "no smuggled request reached a handler")
  T.eq(hits["/echo"] or 0, before, "no hostile request reached a handler")
end)

T.test("hostile: slowloris: 200 connections at one byte a second are closed at request_timeout", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", handler, { request_timeout = 3000 }))
  local out = py([[
N = 200
REQ = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
socks = [conn() for _ in range(N)]
t0 = time.time()
closed_at, got408 = {}, 0
worst, served, pos = 0.0, 0, 0
while len(closed_at) < N and time.time() - t0 < 10:
    live = [s for s in socks if s not in closed_at]
    r, _, _ = select.select(live, [], [], 0)
    for s in r:
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if d.startswith(b"HTTP/1.1 408"):
            got408 += 1
            d = b""
        if not d:
            closed_at[s] = time.time() - t0
            s.close()
    for s in socks:
        if s not in closed_at:
            try:
                s.send(REQ[pos:pos + 1])
            except OSError:
                pass
    pos += 1
    # Good clients during the attack, each timed.
    tick = time.time()
    while time.time() - tick < 1.0:
        ok, secs = good()
        served += ok
        worst = max(worst, secs)
        time.sleep(0.2)
out("closed", len(closed_at))
out("got408", got408)
out("first_close", round(min(closed_at.values()), 1))
out("last_close", round(max(closed_at.values()), 1))
out("served", served >= 10)
out("worst", round(worst, 3))
]], l:port(), 60000)
  local r = kv(out)
  T.eq(r.closed, "200", "every slow connection was closed")
  T.eq(r.got408, "200", "each with a 408")
  T.ok(tonumber(r.first_close) >= 2.5, "none before the timeout (first " .. r.first_close .. " s)")
  T.ok(tonumber(r.last_close) <= 5.5, "all soon after the 3 s timeout (last " .. r.last_close .. " s)")
  T.eq(r.served, "True", "good clients were served during the attack")
  T.ok(tonumber(r.worst) < 1.0, "good clients served within 1 s (worst " .. r.worst .. " s)")
  l:close()
end)

---------------------------------------------------------------------------
-- Broken clients: disconnects at awkward moments
---------------------------------------------------------------------------

T.test("broken clients: disconnects mid-request, mid-response and mid-frame", function()
  deferred = {}
  local base = open_conns()
  local out = py(P.WS .. [==[
for data in [b"GET /hello HTT",
             b"GET /hello HTTP/1.1\r\nHost: x\r\n",
             b"POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + b"p" * 300,
             b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc"]:
    s = conn(); s.sendall(data); time.sleep(0.05); s.close()
# mid-response: 5 MiB reply, read a little, then close or reset
for how in ["close", "reset"]:
    s = conn()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100)
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
# a deferred reply whose client leaves
s = conn(); s.sendall(b"GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"); time.sleep(0.2); s.close()
# mid-WebSocket-frame: header only, half a payload, half a header
for part in [frame(b"x" * 100)[:6], frame(b"x" * 100)[:50], frame(b"x" * 300)[:3]]:
    s = ws_open(); s.sendall(part); time.sleep(0.05); s.close()
time.sleep(0.3)
out("good", good()[0])
]==], wsl:port())
  T.eq(out, "good True\n", "python output")
  T.ok(T.poll_until(mgr, function() return open_conns() <= base end, 5000),
       "every connection was closed on the server (" .. open_conns() .. " open, " .. base .. " before)")
  T.eq(#deferred, 1, "the deferred request arrived")
end)

T.test("broken clients: res and ws kept after close fail cleanly", function()
  -- The deferred response of the previous test: its client is gone.
  local d = deferred[1]
  T.ok(d, "a deferred response is kept")
  local ok, err = d.res:send(200, "too late")
  T.eq(ok, nil, "send after close")
  T.eq(err, "connection closed")
  T.raises("response already sent", d.res.send, d.res, 200, "again")
  T.raises("request data is no longer available", d.req.body, d.req)
  T.eq(d.res:close(), true, "close is harmless")
  T.eq(d.res:send_queued(), 0)

  local kept
  local m2 = assert(mongoose.new_manager())
  local l = assert(m2:ws_listen("http://127.0.0.1:0", {
    on_open = function(ws)
      kept = ws
    end,
  }))
  local job = T.spawn(T.q(T.python) .. " -c " .. T.q(P.HTTP .. P.WS
    .. "s = ws_open(); time.sleep(0.2); s.close()\n") .. " " .. l:port())
  local _, rc, err2 = T.wait(job, m2, 10000)
  T.eq(rc, 0, "python exit status " .. err2)
  T.ok(T.poll_until(m2, function() return kept and kept.closed end, 3000), "ws closed")
  local sent, why = kept:send("after close")
  T.eq(sent, nil, "ws:send after close")
  T.eq(why, "closed")
  T.eq(select(2, kept:ping()), "closed", "ping after close")
  T.eq(kept:close(), true, "close after close")
  T.eq(kept:send_queued(), 0)
  local ok2, werr = m2:ws_send(kept.id, "x")
  T.eq(ok2, nil, "mgr:ws_send to a closed id")
  T.ok(werr, "with an error message")
  m2:close()
end)

---------------------------------------------------------------------------
-- Misbehaving handlers: 500, and the server goes on
---------------------------------------------------------------------------

routes["/h/error"] = function()
  error("boom")
end
routes["/h/error_table"] = function()
  error({ code = 1 })
end
routes["/h/error_nil"] = function()
  error(nil)
end
routes["/h/error_tostring"] = function()
  error(setmetatable({}, { __tostring = function() error("tostring failed too") end }))
end
routes["/h/yield"] = function()
  coroutine.yield(1)
end
routes["/h/table"] = function()
  return { 200 }
end
routes["/h/function"] = function()
  return print
end
routes["/h/string"] = function()
  return "200"
end
routes["/h/nan"] = function()
  return 0 / 0
end
routes["/h/huge"] = function()
  return math.huge
end
routes["/h/status_99"] = function()
  return 99
end
routes["/h/body_table"] = function()
  return 200, { "x" }
end
routes["/h/headers_string"] = function()
  return 200, "x", "Content-Type: text/plain"
end
routes["/h/header_number_name"] = function()
  return 200, "x", { [1] = "y" }
end
routes["/h/deep_recursion"] = function()
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end

T.test("handlers: errors, garbage returns and yields outside a coroutine give 500", function()
  local names = {}
  for path in pairs(routes) do
    local n = path:match("^/h/(.+)$")
    if n then
      names[#names + 1] = n
    end
  end
  table.sort(names)
  local out = py([[
for name in sys.argv[2].split(","):
    r = raw(b"GET /h/" + name.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", None, 5)
    out(name, status(r))
    out(name + "_good", good()[0])
]], PORT .. " " .. table.concat(names, ","), 120000)
  local r, bad = kv(out), {}
  for _, n in ipairs(names) do
    if r[n] ~= "500" then
      bad[#bad + 1] = n .. " got " .. tostring(r[n])
    end
    T.eq(r[n .. "_good"], "True", "good client after " .. n)
  end
  T.eq(table.concat(bad, "; "), "", "handlers not answered 500")
  T.ok(find_log("HTTP handler for GET /h/error failed"), "the error is logged")
end)

T.test("handlers: a yield while poll runs inside a coroutine gives 500; later polls work", function()
  -- LuaJIT lets coroutine.yield pass through xpcall: without a guard the
  -- dispatch stayed suspended, and every later poll raised.
  local streamed = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if req.path == "/chunk-yield" then
      req:on_body(function() coroutine.yield("chunk") end, function() end)
    elseif req.path == "/end-yield" then
      req:on_body(function() end, function() coroutine.yield("end") end)
    else
      return handler(req, res)
    end
  end, { stream_threshold = 100 }))
  local n0 = #logs
  local co = coroutine.create(function()
    return py([[
for path in [b"/h/yield", b"/hello"]:
    out(path.decode().strip("/").replace("/", "_"),
        status(raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")))
s = conn()
for path in [b"/h/yield", b"/hello", b"/h/yield", b"/hello"]:
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    out("keepalive" + path.decode().replace("/", "_"), status(read_resp(s)))
s.close()
port2 = int(sys.argv[2])
for path in [b"/chunk-yield", b"/end-yield"]:
    r = raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 1000, port2)
    out(path.decode().strip("/"), status(r))
out("after", good(port2)[0])
]], PORT .. " " .. streamed:port())
  end)
  local resumed, out = coroutine.resume(co)
  T.eq(coroutine.status(co), "dead", "the coroutine polling the manager ran to its end (resumed: "
       .. tostring(resumed) .. ", " .. tostring(out) .. ")")
  T.ok(resumed, "no error: " .. tostring(out))
  local r = kv(out)
  T.eq(r.h_yield, "500", "a yielding handler: 500")
  T.eq(r.hello, "200", "the next request")
  T.eq(r["keepalive_h_yield"], "500", "keep-alive: 500")
  T.eq(r["keepalive_hello"], "200", "keep-alive: the next request on the connection")
  T.eq(r["chunk-yield"], "500", "a yielding on_chunk: 500")
  T.eq(r["end-yield"], "500", "a yielding on_end: 500")
  T.eq(r.after, "True", "the streaming listener serves the next request")
  local logged = false
  for i = n0 + 1, #logs do
    logged = logged or logs[i].msg:find("HTTP handler for GET /h/yield failed: coroutine.yield()", 1, true) ~= nil
  end
  T.ok(logged, "the yield is logged")
  -- Later polls, inside or outside a coroutine, work.
  T.eq(mgr.dispatching, false, "not left dispatching")
  T.ok(pcall(mgr.poll, mgr, 0), "poll outside a coroutine")
  T.eq(py("out('ok', good()[0])\n", PORT), "ok True\n", "served again")
  streamed:close()
end)

T.test("handlers: an error on a keep-alive connection, then more requests on it", function()
  local out = py([[
s = conn()
for path in [b"/h/error", b"/hello", b"/h/yield", b"/hello"]:
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    out(status(read_resp(s)))
s.close()
]], PORT)
  T.eq(out, "500\n200\n500\n200\n")
end)

T.run()
