-- The HTTP server's request (mongoose.http): method, path, query and its
-- decoding, the peer's address, and the body: buffered (1 MB from curl and
-- python, chunked uploads), streamed (req:on_body) and after a deferred
-- reply.
local T = require("testlib")
local H = require("testhttp").server()
local mgr, routes, PORT, BASE = H.mgr, H.routes, H.PORT, H.BASE
local curl, py, pyc, parse_response = H.curl, H.py, H.pyc, T.parse_response
local mongoose = require("mongoose")
local adler32, random_bytes = T.adler32, T.random_bytes
local MB = 1048576

routes["/method"] = function(req)
  return 200, req.method
end

-- Echoes the request body's length and Adler-32.
routes["/sum"] = function(req)
  local body = req:body()
  return 200, #body .. " " .. adler32(body)
end

---------------------------------------------------------------------------
-- Method, path and query
---------------------------------------------------------------------------

T.test("GET/POST/PUT/DELETE/PATCH/OPTIONS reach the handler with req.method", function()
  local out = pyc([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
    body = b"data" if m in ("POST", "PUT", "PATCH") else None
    c.request(m, "/method", body=body)
    r = c.getresponse()
    print(m, r.status, r.read().decode())
]], PORT)
  local n = 0
  for m, status, seen in out:gmatch("(%u+) (%d+) (%u+)\n") do
    n = n + 1
    T.eq(status, "200", "status for " .. m)
    T.eq(seen, m, "req.method for " .. m)
  end
  T.eq(n, 6, "responses")
end)

T.test("curl -X PATCH / DELETE set req.method", function()
  for _, m in ipairs({ "PATCH", "DELETE", "PUT" }) do
    local out = curl("-X " .. m .. " " .. T.q(BASE .. "/method"))
    T.eq(out, m, "method seen by the handler")
  end
end)

T.test("req.path, req.query and req:query_params() decoding", function()
  local seen
  routes["/some/path"] = function(req)
    seen = { path = req.path, query = req.query, params = req:query_params(),
             a = req:query_params("a"), version = req.version }
    return 200, "ok"
  end
  local url = BASE .. "/some/path?a=1&b=hello%20world&c=x+y&d=%2B%26%3D&a=2&flag&e=&%C3%A9=%E2%82%AC"
  local out = curl(T.q(url))
  T.eq(out, "ok", "body")
  T.ok(seen, "handler ran")
  T.eq(seen.path, "/some/path", "req.path (without the query)")
  T.eq(seen.query, "a=1&b=hello%20world&c=x+y&d=%2B%26%3D&a=2&flag&e=&%C3%A9=%E2%82%AC", "req.query (raw)")
  T.eq(seen.version, "HTTP/1.1", "req.version")
  T.eq(seen.params.a, "1", "first of repeated keys")
  T.eq(seen.a, "1", "query_params(name)")
  T.eq(seen.params.b, "hello world", "%20 decoded")
  T.eq(seen.params.c, "x y", "+ decoded to a space")
  T.eq(seen.params.d, "+&=", "escaped reserved characters")
  T.eq(seen.params.flag, "", "key without a value")
  T.eq(seen.params.e, "", "empty value")
  T.eq(seen.params["\195\169"], "\226\130\172", "UTF-8 key and value")
  T.eq(seen.params.missing, nil, "absent key")
end)

T.test("a request without a query has req.query == '' and no params", function()
  local seen
  routes["/noquery"] = function(req)
    seen = { query = req.query, params = req:query_params() }
    return 200, "ok"
  end
  T.eq(curl(T.q(BASE .. "/noquery")), "ok", "body")
  T.eq(seen.query, "", "req.query")
  T.eq(next(seen.params), nil, "no params")
end)

T.test("query values with bad escapes are kept as they are", function()
  local seen
  routes["/badescape"] = function(req)
    seen = req:query_params()
    return 200, "ok"
  end
  T.eq(curl(T.q(BASE .. "/badescape?a=%zz&b=100%&c=%4")), "ok", "body")
  T.eq(seen.a, "%zz", "a")
  T.eq(seen.b, "100%", "b")
  T.eq(seen.c, "%4", "c")
end)

T.test("mongoose.url_decode and parse_query", function()
  T.eq(mongoose.url_decode("a%20b+c"), "a b+c", "url_decode keeps + outside forms")
  T.eq(mongoose.url_decode("a%20b+c", true), "a b c", "form decoding turns + into a space")
  local q = mongoose.parse_query("x=1&y=%41&x=3")
  T.eq(q.x, "1", "first x")
  T.eq(q.y, "A", "decoded y")
end)

T.test("req:remote_ip() is 127.0.0.1 and req:remote_port() python's port", function()
  local seen
  routes["/remote"] = function(req)
    seen = { ip = req:remote_ip(), port = req:remote_port(), addr = req:remote_addr() }
    return 200, "ok"
  end
  local out = pyc([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("GET", "/remote")
port = c.sock.getsockname()[1]
c.getresponse().read()
print(port)
]], PORT)
  T.eq(seen.ip, "127.0.0.1", "remote_ip")
  T.eq(type(seen.port), "number", "remote_port type")
  T.eq(seen.port, tonumber(out), "remote_port equals python's local port")
  T.eq(seen.addr, "127.0.0.1:" .. seen.port, "remote_addr")
end)

---------------------------------------------------------------------------
-- Buffered bodies
---------------------------------------------------------------------------

local big_body = random_bytes(MB, 12345)
local big_path = T.tmpdir() .. "/big1m.bin"
T.write_file(big_path, big_body)
T.test("a 1 MB request body from curl arrives intact", function()
  local got
  routes["/upload"] = function(req)
    got = req:body()
    return 200, #got .. " " .. adler32(got)
  end
  local out, rc = curl("--data-binary @" .. T.q(big_path) .. " -H 'Content-Type: application/octet-stream' "
                       .. T.q(BASE .. "/upload"))
  T.eq(rc, 0, "curl exit status")
  T.eq(#got, MB, "received length")
  T.ok(got == big_body, "received bytes equal the file")
  T.eq(out, MB .. " " .. adler32(big_body), "length and checksum echoed")
end)

T.test("a 1 MB request body from python arrives intact (length + adler32)", function()
  local out = pyc([[
post_file(http.client.HTTPConnection("127.0.0.1", PORT, timeout=5), "/sum", sys.argv[2])
]], PORT .. " " .. T.q(big_path))
  local status, server_sum, client_sum = out:match("^(%d+) (%d+ %d+)\n(%d+ %d+)\n$")
  T.eq(status, "200", "status")
  T.eq(server_sum, client_sum, "server's length+checksum equals python's")
  T.eq(server_sum, MB .. " " .. adler32(big_body), "and Lua's")
end)

T.test("a chunked request body (Transfer-Encoding: chunked) is decoded", function()
  local got
  routes["/chunked-upload"] = function(req)
    got = { body = req:body(), te = req:header("Transfer-Encoding") }
    return 200, "got " .. #got.body
  end
  local data = random_bytes(200000, 99)
  local path = T.tmpdir() .. "/chunked-up.bin"
  T.write_file(path, data)
  local out, rc = curl("-H 'Transfer-Encoding: chunked' --data-binary @" .. T.q(path) .. " "
                       .. T.q(BASE .. "/chunked-upload"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "got 200000", "response")
  T.eq(got.te, "chunked", "Transfer-Encoding header")
  T.ok(got.body == data, "decoded body equals the file")
end)

T.test("request data read after a deferred reply raises a clear error", function()
  local saved_req
  routes["/deferred-stale"] = function(req, res)
    saved_req = req
    mgr:set_timeout(10, function()
      res:send(200, "ok")
    end)
  end
  T.eq(curl(T.q(BASE .. "/deferred-stale")), "ok", "body")
  T.ok(T.poll_until(mgr, function() return false end, 20) == false, "polled on")
  T.raises("no longer available", saved_req.body, saved_req)
  T.raises("no longer available", saved_req.headers, saved_req)
  -- The error points at the line that asked, in this file.
  for _, read in ipairs({ function() local h = saved_req:header("x"); return h end,
                          function() local t = saved_req:trailers(); return t end }) do
    local ok, err = pcall(read)
    T.ok(not ok and err:find("^[^:]*test_request%.lua:%d+: request data is no longer available"),
         "error at the caller: " .. tostring(err))
  end
  T.eq(saved_req.path, "/deferred-stale", "copied fields stay available")
end)

---------------------------------------------------------------------------
-- Streamed bodies (stream_threshold, req:on_body)
---------------------------------------------------------------------------

local stream_log = {}
local streamed = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  local info = { streaming = req.streaming, length = req:content_length(), chunks = 0, bytes = {} }
  stream_log[#stream_log + 1] = info
  if not req.streaming then
    info.on_body_err = select(2, pcall(req.on_body, req, function() end))
    return 200, "small " .. #req:body()
  end
  info.body = req:body()
  info.bad_args = select(2, pcall(req.on_body, req, "x"))
  req:on_body(function(chunk)
    info.chunks = info.chunks + 1
    info.bytes[#info.bytes + 1] = chunk
  end, function()
    local body = table.concat(info.bytes)
    info.ended = true
    info.send_ok = res:send(200, #body .. " " .. adler32(body))
  end)
end, { stream_threshold = 65536 }))
local STPORT = streamed:port()

local five_mb = random_bytes(5 * MB, 777)
local five_path = T.tmpdir() .. "/big5m.bin"
T.write_file(five_path, five_mb)

T.test("streamed upload: req:on_body receives all bytes of 5 MB, then res:send works", function()
  local n0 = #stream_log
  local out, rc = curl("-H 'Expect:' --data-binary @" .. T.q(five_path) .. " "
                       .. T.q("http://127.0.0.1:" .. STPORT .. "/up"), 15000)
  T.eq(rc, 0, "curl exit status")
  T.eq(#stream_log, n0 + 1, "one request")
  local info = stream_log[n0 + 1]
  T.eq(info.streaming, true, "req.streaming")
  T.eq(info.length, 5 * MB, "content_length()")
  T.eq(info.body, nil, "req:body() of a streamed request")
  T.match(info.bad_args, "on_body expects", "on_body argument check")
  T.ok(info.ended, "on_end called")
  T.ok(info.chunks > 1, "several chunks (" .. info.chunks .. ")")
  local got = table.concat(info.bytes)
  T.eq(#got, 5 * MB, "bytes received")
  T.ok(got == five_mb, "bytes equal the file")
  T.eq(info.send_ok, true, "res:send after the body")
  T.eq(out, 5 * MB .. " " .. adler32(five_mb), "response")
end)

T.test("streamed upload from python, then another request on the same connection", function()
  local out = pyc([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
post_file(c, "/up", sys.argv[2])
c.request("POST", "/small", body=b"tiny")
r = c.getresponse()
print(r.status, r.read().decode())
]], STPORT .. " " .. T.q(five_path), 15000)
  local status, server_sum, client_sum, status2, small =
    out:match("^(%d+) (%d+ %d+)\n(%d+ %d+)\n(%d+) (.-)\n$")
  T.eq(status, "200", "status")
  T.eq(server_sum, client_sum, "the server's length and checksum equal python's")
  T.eq(status2, "200", "status of the next request")
  T.eq(small, "small 4", "the next request's body")
  local info = stream_log[#stream_log]
  T.eq(info.streaming, false, "a small body is not streamed")
  T.match(info.on_body_err, "only for streamed requests", "on_body on a buffered request")
end)

T.test("a streamed request answered before its body arrived: the next request is served", function()
  -- Replying early (say, 401 or 413 before an upload) is legal HTTP; the
  -- rest of the body must then be skipped and keep-alive must go on (or
  -- the server must close the connection), not leave the client hanging.
  local early = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
    return 200, "plain " .. req.path
  end, { stream_threshold = 1000 }))
  -- The reply is read before the rest of the body is sent, so it surely
  -- comes first.
  local out, rc = py([[
s = socket.create_connection(("127.0.0.1", PORT))
s.settimeout(2)
s.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 2000)
resp = b""
while not resp.endswith(b"plain /early"):
    d = s.recv(65536)
    if not d:
        break
    resp += d
print(resp.split(b"\r\n")[0].decode(), resp.split(b"\r\n\r\n", 1)[-1].decode())
s.sendall(b"x" * 98000)
s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
resp = b""
try:
    while not resp.endswith(b"plain /next"):
        d = s.recv(65536)
        if not d:
            break
        resp += d
    if resp:
        print(resp.split(b"\r\n")[0].decode(), resp.split(b"\r\n\r\n", 1)[-1].decode())
    else:
        print("closed")  # acceptable: the server closed instead of skipping the body
except ConnectionError:
    print("closed")
except socket.timeout:
    print("TIMEOUT: the next request was never answered")
]], early:port())
  early:close()
  T.eq(rc, 0, "python exit status")
  local first, second = out:match("^([^\n]*)\n([^\n]*)\n$")
  T.eq(first, "HTTP/1.1 200 OK plain /early", "the early reply")
  T.ok(second == "HTTP/1.1 200 OK plain /next" or second == "closed",
       "the next request: " .. tostring(second))
end)

T.test("an error in on_chunk or on_end gives one 500 and a close; the server goes on", function()
  local calls = { chunk = 0, after = 0, ended = 0 }
  local failing = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if req.path == "/chunk-error" then
      req:on_body(function()
        calls.chunk = calls.chunk + 1
        error("on_chunk boom")
      end, function()
        calls.after = calls.after + 1 -- never: the body is dropped after the error
      end)
    elseif req.path == "/end-error" then
      req:on_body(function() end, function()
        calls.ended = calls.ended + 1
        error("on_end boom")
      end)
    elseif req.path == "/handler-error" then
      req:on_body(function() calls.after = calls.after + 1 end)
      error("handler boom")
    else
      return 200, "next " .. req.path
    end
  end, { stream_threshold = 1000 }))
  local url = "http://127.0.0.1:" .. failing:port()
  local path = T.tmpdir() .. "/one-mb.bin"
  T.write_file(path, random_bytes(MB, 99))
  local function count_logs(text)
    return T.count_logs(H.logs, text)
  end

  local out = curl("-i -H 'Expect:' --data-binary @" .. T.q(path) .. " " .. T.q(url .. "/chunk-error"))
  local r = T.ok(parse_response(out), "a parsable response: " .. out)
  T.eq(r.status, 500, "on_chunk error: status")
  T.eq(r.headers["connection"], "close", "on_chunk error: Connection: close")
  T.eq(calls.chunk, 1, "on_chunk is not called again after its error")
  T.eq(calls.after, 0, "on_end is not called after an on_chunk error")
  T.eq(count_logs("HTTP body callback on_chunk for POST /chunk-error failed"), 1, "logged once")
  T.eq(curl(T.q(url .. "/after")), "next /after", "the next request is served")

  out = curl("-i -H 'Expect:' --data-binary @" .. T.q(path) .. " " .. T.q(url .. "/end-error"))
  r = T.ok(parse_response(out), "a parsable response: " .. out)
  T.eq(r.status, 500, "on_end error: status")
  T.eq(calls.ended, 1, "on_end called once")
  T.eq(count_logs("HTTP body callback on_end for POST /end-error failed"), 1, "logged once")

  -- The handler registers on_body, then raises: 500, and the body is dropped.
  out = curl("-i -H 'Expect:' --data-binary @" .. T.q(path) .. " " .. T.q(url .. "/handler-error"))
  T.eq(T.ok(parse_response(out), "a parsable response: " .. out).status, 500, "handler error: status")
  T.eq(calls.after, 0, "no body callback after the handler's error")

  -- On a keep-alive connection: the 500, then the server closes.
  local pyout, rc = py([[
r = raw(b"POST /end-error HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"y" * 5000)
print(r.split(b"\r\n")[0].decode(), r.endswith(b"Internal Server Error\n"))
]], failing:port())
  T.eq(rc, 0, "python exit status")
  T.eq(pyout, "HTTP/1.1 500 Internal Server Error True\n", "500, then the connection closes")
  T.eq(failing:pending_count(), 0, "no request left pending")
  failing:close()
end)

T.run()
