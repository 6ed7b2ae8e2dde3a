-- The HTTP listener (mgr:http_listen, mongoose.http): ports and
-- addresses, connections (keep-alive, pipelining, HTTP/1.0, Connection:
-- close, parallel clients), handlers that fail, and the listener's own
-- life. One manager in this process serves; real clients (curl, python3)
-- run in the background while it keeps polling.
local T = require("testlib")
local H = require("testhttp").server()
local mgr, routes, PORT, BASE = H.mgr, H.routes, H.PORT, H.BASE
local curl, pyc, parse_response = H.curl, H.pyc, T.parse_response
local listener, find_log = H.listener, H.find_log

---------------------------------------------------------------------------
-- Basics
---------------------------------------------------------------------------

T.test("listener binds an OS-chosen port on 127.0.0.1", function()
  T.ok(type(PORT) == "number" and PORT > 0 and PORT < 65536, "port is a valid number")
  local addr = listener:local_addr()
  T.eq(addr, "127.0.0.1:" .. PORT, "local_addr")
  T.ok(mgr:connection_count() >= 1, "the listener counts as a connection")
end)

T.test("GET with curl reaches the handler", function()
  local out, rc = curl(T.q(BASE .. "/hello"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "hello\n", "body")
end)

T.test("HEAD gets headers with the Content-Length of the body but no body", function()
  local out = pyc('head_then_hello("/hello", "Content-Length")\n', PORT)
  T.eq(out, "200 6 b''\n200 b'hello\\n'\n", "HEAD then GET on one connection")
end)

---------------------------------------------------------------------------
-- Connections
---------------------------------------------------------------------------

T.test("keep-alive: curl with several URLs reuses one connection", function()
  local ports = {}
  routes["/ka"] = function(req)
    ports[#ports + 1] = req:remote_port()
    return 200, req:query_params("n")
  end
  local out, rc, err = curl("-v " .. T.q(BASE .. "/ka?n=a") .. " " .. T.q(BASE .. "/ka?n=b") .. " "
                            .. T.q(BASE .. "/ka?n=c"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "abc", "bodies")
  T.match(err, "Re%-using existing connection", "curl -v reports reuse")
  T.eq(#ports, 3, "requests")
  T.ok(ports[1] == ports[2] and ports[2] == ports[3], "all from one client port")
end)

T.test("keep-alive: python http.client makes 20 requests on one connection", function()
  local ports = {}
  routes["/ka20"] = function(req)
    ports[req:remote_port()] = (ports[req:remote_port()] or 0) + 1
    return 200, "n=" .. req:query_params("n")
  end
  local out = pyc([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.connect()
local_port = c.sock.getsockname()[1]
ok = 0
for i in range(20):
    c.request("GET", "/ka20?n=%d" % i)
    r = c.getresponse()
    body = r.read().decode()
    if r.status == 200 and body == "n=%d" % i and c.sock is not None \
            and c.sock.getsockname()[1] == local_port:
        ok += 1
print(ok, local_port)
]], PORT)
  local ok, local_port = out:match("^(%d+) (%d+)")
  T.eq(ok, "20", "requests answered on the same connection")
  T.eq(ports[tonumber(local_port)], 20, "the server saw all 20 from python's port")
  local n = 0
  for _ in pairs(ports) do n = n + 1 end
  T.eq(n, 1, "one client port only")
end)

T.test("pipelined requests are answered in order", function()
  routes["/echo-n"] = function(req)
    return 200, "n=" .. req:query_params("n")
  end
  local out = H.raw([[b"GET /echo-n?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /echo-n?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /echo-n?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]])
  local bodies = {}
  for body in out:gmatch("\r\n\r\n(n=%d)") do
    bodies[#bodies + 1] = body
  end
  T.eq(table.concat(bodies, ","), "n=1,n=2,n=3", "responses in order")
  local _, statuses = out:gsub("HTTP/1%.1 200 OK\r\n", "")
  T.eq(statuses, 3, "three 200 responses")
  T.match(out, "Connection: close\r\n", "the last response announces the close")
end)

T.test("a request pipelined behind a deferred reply is answered after it, in order", function()
  routes["/def-first"] = function(req, res)
    mgr:set_timeout(30, function()
      res:send(200, "first")
    end)
  end
  routes["/second"] = function()
    return 200, "second"
  end
  local out = H.raw([[b"GET /def-first HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=3]])
  T.match(out, "^HTTP/1%.1 200 OK\r\n.-\r\n\r\nfirstHTTP/1%.1 200 OK\r\n.-\r\n\r\nsecond$", "responses")
end)

T.test("HTTP/1.0 requests get Connection: close and the connection closes", function()
  local out = H.raw([[b"GET /hello HTTP/1.0\r\n\r\n"]], nil,
                    "python exit status (raw() returned, so the server closed)")
  T.match(out, "^HTTP/1%.1 200 OK\r\n", "status line")
  T.match(out, "\r\nConnection: close\r\n", "Connection: close")
  T.match(out, "\r\n\r\nhello\n$", "body")
end)

T.test("Connection: close from an HTTP/1.1 client is honoured", function()
  local out = H.raw([[b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]])
  T.match(out, "\r\nConnection: close\r\n", "Connection: close")
  T.match(out, "hello\n$", "body")
end)

T.test("parallel curl transfers are all answered", function()
  routes["/par"] = function(req, res)
    local n = req:query_params("n")
    mgr:set_timeout((tonumber(n) % 3) * 20, function()
      res:send(200, "p" .. n .. "\n")
    end)
  end
  local urls = {}
  for i = 1, 10 do
    urls[#urls + 1] = T.q(BASE .. "/par?n=" .. i)
  end
  local out, rc = curl("-Z --parallel-max 10 " .. table.concat(urls, " "))
  T.eq(rc, 0, "curl exit status")
  local seen = {}
  for n in out:gmatch("p(%d+)\n") do
    seen[#seen + 1] = tonumber(n)
  end
  table.sort(seen)
  T.eq(table.concat(seen, ","), "1,2,3,4,5,6,7,8,9,10", "all responses")
end)

---------------------------------------------------------------------------
-- Handler failures
---------------------------------------------------------------------------

T.test("a handler error gives 500, is logged, and the next request succeeds", function()
  routes["/error"] = function()
    error("boom in handler")
  end
  local r = parse_response(curl("-i " .. T.q(BASE .. "/error")))
  T.eq(r.status, 500, "status")
  T.eq(r.body, "Internal Server Error\n", "body")
  local e = T.ok(find_log("HTTP handler for GET /error failed"), "error logged")
  T.eq(e.level, "error", "log level")
  T.match(e.msg, "boom in handler", "the error message is logged")
  T.match(e.msg, "stack traceback", "with a traceback")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "next request")
end)

T.test("a handler error on a keep-alive connection: the next request on it succeeds", function()
  local out, rc = curl(T.q(BASE .. "/error") .. " " .. T.q(BASE .. "/hello"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "Internal Server Error\nhello\n", "both responses")
end)

T.test("a handler returning a table gives 500", function()
  routes["/table"] = function()
    return { status = 200 }
  end
  local r = parse_response(curl("-i " .. T.q(BASE .. "/table")))
  T.eq(r.status, 500, "status")
  T.ok(find_log("returned table instead of a status number"), "logged")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "next request")
end)

T.test("a handler returning an invalid status or body gives 500", function()
  routes["/bad-status"] = function()
    return 42, "x"
  end
  routes["/bad-body"] = function()
    return 200, { "not a string" }
  end
  T.eq(parse_response(curl("-i " .. T.q(BASE .. "/bad-status"))).status, 500, "status 42")
  T.eq(parse_response(curl("-i " .. T.q(BASE .. "/bad-body"))).status, 500, "table body")
  T.ok(find_log("returned an invalid response"), "logged")
end)

---------------------------------------------------------------------------
-- Peers and IPv6
---------------------------------------------------------------------------

T.test("an IPv6 listener on [::1] serves curl -g", function()
  local seen
  local l6, err = mgr:http_listen("http://[::1]:0", function(req)
    seen = { ip = req:remote_ip(), addr = req:remote_addr() }
    return 200, "v6 ok"
  end)
  T.ok(l6, "listen on [::1]: " .. tostring(err))
  local port = l6:port()
  T.ok(port > 0, "port")
  T.eq(l6:local_addr(), "[::1]:" .. port, "local_addr")
  local out, rc = curl("-g " .. T.q("http://[::1]:" .. port .. "/"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "v6 ok", "body")
  T.eq(seen.ip, "::1", "remote_ip")
  T.match(seen.addr, "^%[::1%]:%d+$", "remote_addr")
  l6:close()
end)

---------------------------------------------------------------------------
-- Listener lifecycle and argument errors
---------------------------------------------------------------------------

T.test("http_listen argument errors and a busy port", function()
  T.raises("url must be a string", mgr.http_listen, mgr, 42, function() end)
  T.raises("handler must be a function", mgr.http_listen, mgr, "http://127.0.0.1:0", "x")
  T.raises("opts must be a table", mgr.http_listen, mgr, "http://127.0.0.1:0", function() end, 5)
  local l, err = mgr:http_listen("http://127.0.0.1:" .. PORT, function() end)
  T.eq(l, nil, "listening on a busy port fails")
  T.match(err, "cannot listen", "error")
end)

T.test("http_listen rejects a port above 65535 or a non-numeric port", function()
  -- Found free: the port of a listener closed again.
  local tmp = assert(mgr:http_listen("http://127.0.0.1:0", function() end))
  local free = tmp:port()
  tmp:close()
  T.poll_until(mgr, function() return false end, 20)
  local bound = {}
  for _, port in ipairs({ tostring(free + 65536), "abc" }) do
    local l, err = mgr:http_listen("http://127.0.0.1:" .. port, function() end)
    if l then
      bound[#bound + 1] = port .. " -> " .. tostring(l:local_addr())
      l:close()
    else
      T.ok(err and #err > 0, "an error message for " .. port)
    end
  end
  T.eq(table.concat(bound, "; "), "", "URLs that were accepted and bound another port")
end)

T.test("a closed listener stops accepting; other listeners keep serving", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "temp" end))
  local url = "http://127.0.0.1:" .. l:port() .. "/"
  T.eq(curl(T.q(url)), "temp", "served before close")
  T.eq(l:close(), true, "close")
  T.eq(l:close(), true, "close again")
  T.poll_until(mgr, function() return false end, 50)
  local _, rc = curl(T.q(url))
  T.eq(rc, 7, "curl: connection refused after close")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "the main listener still serves")
end)

T.test("a closed listener gives its port back at once: listen there again without a poll", function()
  for _, scheme in ipairs({ "http", "tcp", "udp" }) do
    local open = scheme == "http" and function(url) return mgr:http_listen(url, function() return 200, "again" end) end
      or scheme == "tcp" and function(url) return mgr:tcp_listen(url, {}) end
      or function(url) return mgr:udp_listen(url, {}) end
    local l = assert(open(scheme .. "://127.0.0.1:0"))
    local port = l:port()
    l:close()
    local again, err = open(scheme .. "://127.0.0.1:" .. port)
    T.ok(again, scheme .. ": listening again on " .. port .. ": " .. tostring(err))
    if again then
      T.eq(again:port(), port, scheme .. " port")
      if scheme == "http" then
        T.eq(curl(T.q("http://127.0.0.1:" .. port .. "/")), "again", "the new listener serves")
      end
      again:close()
    end
  end
end)

T.run()
