-- Integration tests of the HTTP server (mongoose.http): one manager in this
-- process serves, real clients (curl, python3) run in the background while
-- the manager keeps polling.
local T = require("testlib")
local ffi = require("ffi")
local bit = require("bit")
local mongoose = require("mongoose")
local core = mongoose.core

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local logs = {}
local mgr = assert(mongoose.new_manager({
  log_level = "info",
  log = function(level, msg)
    logs[#logs + 1] = { level = level, msg = msg }
  end,
}))

-- The first log message matching pattern (plain find), or nil.
local function find_log(pattern, level)
  for _, e in ipairs(logs) do
    if e.msg:find(pattern, 1, true) and (level == nil or e.level == level) then
      return e
    end
  end
  return nil
end

-- Runs a shell script in the background while mgr polls. The script goes
-- through a file so that newlines, quotes and "$" reach the shell intact;
-- its exit status is recorded by the script itself. Returns stdout,
-- exit status, stderr.
local script_seq = 0
local function sh(script, timeout_ms)
  script_seq = script_seq + 1
  local base = T.tmpdir() .. "/srv" .. script_seq
  T.write_file(base .. ".sh", "(\n" .. script .. "\n)\necho $? >" .. base .. ".status\n")
  local out, _, err = T.run_client(mgr, "sh " .. base .. ".sh", timeout_ms or 10000)
  return out, tonumber(T.read_file(base .. ".status") or ""), err
end

-- curl with a 5 s limit; args is the rest of the command line (quoted).
local function curl(args, timeout_ms)
  return sh("curl -sS -m 5 " .. args, timeout_ms)
end

-- Python script run with the port as argv[1]. The preamble defines raw(),
-- which sends bytes on a fresh connection and returns all that comes back
-- until the server closes (with a "<TIMEOUT...>" marker if it does not).
local PY_PREAMBLE = [[
import socket, sys, http.client, zlib, time
socket.setdefaulttimeout(5)
PORT = int(sys.argv[1])
def raw(data, port=None, timeout=5):
    s = socket.create_connection(("127.0.0.1", port or PORT))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        except socket.timeout:
            out += b"<TIMEOUT: the server did not close>"
            break
        if not d:
            break
        out += d
    s.close()
    return out
]]
local function py(code, port, timeout_ms)
  script_seq = script_seq + 1
  local path = T.tmpdir() .. "/py" .. script_seq .. ".py"
  T.write_file(path, PY_PREAMBLE .. code)
  return sh(T.python .. " " .. path .. " " .. tostring(port), timeout_ms)
end

-- Adler-32 (the same as Python's zlib.adler32).
local function adler32(s)
  local p = ffi.cast("const uint8_t *", s)
  local a, b = 1, 0
  for i = 0, #s - 1 do
    a = (a + p[i]) % 65521
    b = (b + a) % 65521
  end
  return b * 65536 + a
end

-- n pseudo-random bytes (xorshift32), the same for the same seed.
local function random_bytes(n, seed)
  local buf = ffi.new("uint8_t[?]", n)
  local x = seed or 2463534242
  for i = 0, n - 1 do
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    buf[i] = bit.band(x, 255)
  end
  return ffi.string(buf, n)
end

-- Splits curl -i output into status, headers (lower-case names, last
-- value wins) and body; follows a 100 Continue to the real response.
local function parse_response(text)
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  if not head then
    return nil
  end
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  if status == 100 then
    return parse_response(body)
  end
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  return { status = status, headers = headers, body = body, head = head }
end

local function file_sha256(path)
  local out = sh("sha256sum " .. T.q(path))
  return out:match("^(%x+)")
end

---------------------------------------------------------------------------
-- The main server: handlers picked by path
---------------------------------------------------------------------------

local routes = {}
local listener = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  local fn = routes[req.path]
  if fn then
    return fn(req, res)
  end
  return 404, "no route for " .. req.path .. "\n", { ["Content-Type"] = "text/plain" }
end))
local PORT = listener:port()
local BASE = "http://127.0.0.1:" .. PORT

routes["/hello"] = function()
  return 200, "hello\n", { ["Content-Type"] = "text/plain" }
end

routes["/method"] = function(req)
  return 200, req.method
end

-- Echoes the request body's length and Adler-32.
routes["/sum"] = function(req)
  local body = req:body()
  return 200, #body .. " " .. adler32(body)
end

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

T.test("GET/POST/PUT/DELETE/PATCH/OPTIONS reach the handler with req.method", function()
  local out, rc = py([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
    body = b"data" if m in ("POST", "PUT", "PATCH") else None
    c.request(m, "/method", body=body)
    r = c.getresponse()
    print(m, r.status, r.read().decode())
]], PORT)
  T.eq(rc, 0, "python exit status")
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

T.test("HEAD gets headers with the Content-Length of the body but no body", function()
  local out, rc = py([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("HEAD", "/hello")
r = c.getresponse()
print(r.status, r.getheader("Content-Length"), repr(r.read()))
# the same connection must still be in sync: no body bytes were sent
c.request("GET", "/hello")
r = c.getresponse()
print(r.status, repr(r.read()))
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.eq(out, "200 6 b''\n200 b'hello\\n'\n", "HEAD then GET on one connection")
end)

---------------------------------------------------------------------------
-- Request line, query and headers
---------------------------------------------------------------------------

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

T.test("mongoose.url_decode and parse_query", function()
  T.eq(mongoose.url_decode("a%20b+c"), "a b+c", "url_decode keeps + outside forms")
  T.eq(mongoose.url_decode("a%20b+c", true), "a b c", "form decoding turns + into a space")
  local q = mongoose.parse_query("x=1&y=%41&x=3")
  T.eq(q.x, "1", "first x")
  T.eq(q.y, "A", "decoded y")
end)

T.test("request headers: case-insensitive lookup, repeated headers joined", function()
  local seen
  routes["/headers"] = function(req)
    seen = {
      custom = req:header("X-Custom"),
      custom_lower = req:header("x-custom"),
      custom_upper = req:header("X-CUSTOM"),
      multi = req:header("X-Multi"),
      missing = req:header("X-Missing"),
      all = req:headers(),
      ua = req:header("user-agent"),
    }
    local ok, err = pcall(req.header, req, 42)
    seen.bad_ok, seen.bad_err = ok, err
    return 200, "ok"
  end
  local out = curl("-H 'x-custom: v' -H 'X-Multi: a' -H 'x-multi: b' " .. T.q(BASE .. "/headers"))
  T.eq(out, "ok", "body")
  T.eq(seen.custom, "v", "X-Custom")
  T.eq(seen.custom_lower, "v", "x-custom")
  T.eq(seen.custom_upper, "v", "X-CUSTOM")
  T.eq(seen.multi, "a, b", "repeated header joined")
  T.eq(seen.missing, nil, "missing header")
  T.eq(seen.all["x-custom"], "v", "headers() has lower-case names")
  T.eq(seen.all["X-Custom"], nil, "headers() has no mixed-case names")
  T.match(seen.ua, "^curl/", "User-Agent")
  T.eq(seen.bad_ok, false, "header(42) raises")
  T.match(seen.bad_err, "header name must be a string", "header(42) error")
end)

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

T.test("response headers set by the handler are visible to curl -i", function()
  routes["/resp-headers"] = function(req, res)
    res:set_header("X-Default", "from-set-header")
    res:set_header("X-Overridden", "old")
    return 200, "body", {
      ["X-Reply"] = "yes",
      ["X-Number"] = 42,
      ["X-List"] = { "one", "two" },
      ["X-Overridden"] = "new",
      ["Content-Type"] = "text/x-test",
    }
  end
  local out, rc = curl("-i " .. T.q(BASE .. "/resp-headers"))
  T.eq(rc, 0, "curl exit status")
  local r = T.ok(parse_response(out), "a parsable response")
  T.eq(r.status, 200, "status")
  T.eq(r.body, "body", "body")
  T.match(r.head, "\r\nX%-Reply: yes\r\n", "X-Reply")
  T.match(r.head, "\r\nX%-Number: 42\r\n", "numeric header value")
  T.match(r.head, "\r\nX%-List: one\r\n", "first value of a list")
  T.match(r.head, "\r\nX%-List: two\r\n", "second value of a list")
  T.match(r.head, "\r\nX%-Default: from%-set%-header\r\n", "set_header")
  T.match(r.head, "\r\nX%-Overridden: new\r\n", "returned header wins over set_header")
  T.ok(not r.head:find("X-Overridden: old", 1, true), "the set_header value is not sent too")
  T.eq(r.headers["content-type"], "text/x-test", "Content-Type")
  T.eq(r.headers["content-length"], "4", "Content-Length")
end)

T.test("status codes 201, 204, 404, 418 with their reason phrases", function()
  routes["/status"] = function(req)
    local code = tonumber(req:query_params("code"))
    return code, code == 204 and "" or ("status " .. code)
  end
  local expect = { [201] = "Created", [204] = "No Content", [404] = "Not Found", [418] = "I'm a teapot" }
  for code, reason in pairs(expect) do
    local out = curl("-i " .. T.q(BASE .. "/status?code=" .. code))
    local r = T.ok(parse_response(out), "a parsable response for " .. code)
    T.eq(r.status, code, "status")
    T.eq(r.head:match("^HTTP/1%.1 %d+ ([^\r]*)"), reason, "reason phrase of " .. code)
    T.eq(r.body, code == 204 and "" or ("status " .. code), "body of " .. code)
  end
  local out = curl("-o /dev/null -w '%{http_code}' " .. T.q(BASE .. "/no/such/route"))
  T.eq(out, "404", "unknown route")
end)

T.test("a handler returning (status, body, headers) is sent", function()
  routes["/tuple"] = function()
    return 202, "accepted body", { ["X-Tuple"] = "1" }
  end
  local r = parse_response(curl("-i " .. T.q(BASE .. "/tuple")))
  T.eq(r.status, 202, "status")
  T.eq(r.body, "accepted body", "body")
  T.eq(r.headers["x-tuple"], "1", "header")
end)

T.test("a handler returning only a status sends an empty body", function()
  routes["/status-only"] = function()
    return 200
  end
  local r = parse_response(curl("-i " .. T.q(BASE .. "/status-only")))
  T.eq(r.status, 200, "status")
  T.eq(r.headers["content-length"], "0", "Content-Length")
  T.eq(r.body, "", "body")
end)

T.test("res:send returns true and a second send raises", function()
  local results
  routes["/send-twice"] = function(req, res)
    local ok1 = res:send(200, "first")
    local ok2, err2 = pcall(res.send, res, 200, "second")
    results = { ok1 = ok1, ok2 = ok2, err2 = err2 }
  end
  T.eq(curl(T.q(BASE .. "/send-twice")), "first", "body")
  T.eq(results.ok1, true, "first send")
  T.eq(results.ok2, false, "second send raises")
  T.match(results.err2, "already sent", "second send error")
end)

T.test("res:send argument errors raise", function()
  local errs = {}
  routes["/send-args"] = function(req, res)
    local function try(...)
      local ok, err = pcall(res.send, res, ...)
      errs[#errs + 1] = ok and "no error" or tostring(err)
    end
    try(99, "x")
    try(1000, "x")
    try(200.5, "x")
    try("200", "x")
    try(200, 42)
    try(200, "x", "not a table")
    try(200, "x", { ["X-Bool"] = true })
    try(200, "x", { [1] = "x" })
    return 200, "fine"
  end
  T.eq(curl(T.q(BASE .. "/send-args")), "fine", "the response after the failed calls")
  T.match(errs[1], "status must be an integer", "status 99")
  T.match(errs[2], "status must be an integer", "status 1000")
  T.match(errs[3], "status must be an integer", "status 200.5")
  T.match(errs[4], "status must be an integer", "status '200'")
  T.match(errs[5], "body must be a string", "numeric body")
  T.match(errs[6], "headers must be a table", "string headers")
  T.match(errs[7], "has a boolean value", "boolean header value")
  T.match(errs[8], "header names must be strings", "numeric header name")
end)

---------------------------------------------------------------------------
-- Large bodies
---------------------------------------------------------------------------

local MB = 1048576
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
  local out, rc = py([[
data = open(sys.argv[2], "rb").read()
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("POST", "/sum", body=data)
r = c.getresponse()
print(r.status, r.read().decode())
print(len(data), zlib.adler32(data))
]], PORT .. " " .. T.q(big_path))
  T.eq(rc, 0, "python exit status")
  local status, server_sum, client_sum = out:match("^(%d+) (%d+ %d+)\n(%d+ %d+)\n$")
  T.eq(status, "200", "status")
  T.eq(server_sum, client_sum, "server's length+checksum equals python's")
  T.eq(server_sum, MB .. " " .. adler32(big_body), "and Lua's")
end)

T.test("a 1 MB response body reaches curl intact (sha256)", function()
  routes["/download"] = function()
    return 200, big_body, { ["Content-Type"] = "application/octet-stream" }
  end
  local out, rc = curl("-o /dev/null -w '%{size_download} %{http_code}' " .. T.q(BASE .. "/download"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, MB .. " 200", "size and status")
  local sums = sh("curl -sS -m 5 " .. T.q(BASE .. "/download") .. " | sha256sum")
  T.eq(sums:match("^(%x+)"), file_sha256(big_path), "sha256 of the download")
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
  local out, rc = py([[
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
  T.eq(rc, 0, "python exit status")
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
  local out, rc = py([[
data = raw(b"GET /echo-n?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /echo-n?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /echo-n?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
sys.stdout.write(data.decode("latin-1"))
]], PORT)
  T.eq(rc, 0, "python exit status")
  local bodies = {}
  for body in out:gmatch("\r\n\r\n(n=%d)") do
    bodies[#bodies + 1] = body
  end
  T.eq(table.concat(bodies, ","), "n=1,n=2,n=3", "responses in order")
  local _, statuses = out:gsub("HTTP/1%.1 200 OK\r\n", "")
  T.eq(statuses, 3, "three 200 responses")
  T.match(out, "Connection: close\r\n", "the last response announces the close")
end)

T.test("HTTP/1.0 requests get Connection: close and the connection closes", function()
  local out, rc = py([[
data = raw(b"GET /hello HTTP/1.0\r\n\r\n")
sys.stdout.write(data.decode("latin-1"))
]], PORT)
  T.eq(rc, 0, "python exit status (raw() returned, so the server closed)")
  T.match(out, "^HTTP/1%.1 200 OK\r\n", "status line")
  T.match(out, "\r\nConnection: close\r\n", "Connection: close")
  T.match(out, "\r\n\r\nhello\n$", "body")
end)

T.test("Connection: close from an HTTP/1.1 client is honoured", function()
  local out, rc = py([[
data = raw(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
sys.stdout.write(data.decode("latin-1"))
]], PORT)
  T.eq(rc, 0, "python exit status")
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
-- Chunked responses
---------------------------------------------------------------------------

routes["/chunked"] = function(req, res)
  T.eq(res:begin(200, { ["Content-Type"] = "text/plain" }), true, "begin")
  res:write("hello, ")
  res:write("")  -- an empty write must not end the response
  res:write("chunked ")
  res:finish("world")
end

routes["/chunked-timer"] = function(req, res)
  res:set_header("X-Stream", "1")
  res:begin(200)
  local i = 0
  mgr:set_interval(10, function(t)
    res:write(i .. ";")
    i = i + 1
    if i == 5 then
      t:cancel()
      res:finish()
    end
  end)
end

T.test("chunked responses (begin/write/finish) are decoded by curl", function()
  local out, rc = curl(T.q(BASE .. "/chunked"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "hello, chunked world", "decoded body")
  local r = parse_response(curl("-i " .. T.q(BASE .. "/chunked")))
  T.eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding")
  T.eq(r.headers["content-length"], nil, "no Content-Length")
  T.eq(r.headers["content-type"], "text/plain", "Content-Type")
end)

T.test("chunks written from a timer reach curl", function()
  local r = parse_response(curl("-i " .. T.q(BASE .. "/chunked-timer")))
  T.eq(r.status, 200, "status")
  T.eq(r.headers["x-stream"], "1", "header from set_header")
  T.eq(r.body, "0;1;2;3;4;", "body")
end)

T.test("chunked responses are decoded by python, and keep-alive continues", function()
  local out, rc = py([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
for path in ["/chunked", "/chunked-timer", "/hello"]:
    c.request("GET", path)
    r = c.getresponse()
    print(r.status, r.getheader("Transfer-Encoding"), repr(r.read().decode()))
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.eq(out, "200 chunked 'hello, chunked world'\n200 chunked '0;1;2;3;4;'\n200 None 'hello\\n'\n",
       "python output")
end)

T.test("chunked framing on the wire", function()
  local out = py([[
data = raw(b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
sys.stdout.write(data.decode("latin-1"))
]], PORT)
  T.match(out, "\r\n\r\n7\r\nhello, \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n$", "chunks")
end)

T.test("write/finish without begin raise", function()
  local errs = {}
  routes["/write-nobegin"] = function(req, res)
    errs[1] = select(2, pcall(res.write, res, "x"))
    errs[2] = select(2, pcall(res.finish, res))
    res:begin(200)
    errs[3] = select(2, pcall(res.write, res, 42))
    errs[4] = select(2, pcall(res.send, res, 200, "x"))
    res:finish("done")
    errs[5] = select(2, pcall(res.write, res, "after"))
  end
  T.eq(curl(T.q(BASE .. "/write-nobegin")), "done", "body")
  T.match(errs[1], "needs a response started with begin", "write before begin")
  T.match(errs[2], "needs a response started with begin", "finish before begin")
  T.match(errs[3], "chunk must be a string", "non-string chunk")
  T.match(errs[4], "already sent", "send after begin")
  T.match(errs[5], "needs a response started with begin", "write after finish")
end)

---------------------------------------------------------------------------
-- Static files
---------------------------------------------------------------------------

local www = T.tmpdir() .. "/www"
os.execute("mkdir -p " .. T.q(www .. "/sub"))
T.write_file(www .. "/index.html", "<h1>index</h1>\n")
T.write_file(www .. "/a.txt", "0123456789abcdef")
T.write_file(www .. "/b.json", '{"k":1}')
T.write_file(www .. "/c.xyz", "custom type")
T.write_file(www .. "/sub/c.txt", "nested")
T.write_file(T.tmpdir() .. "/secret.txt", "TOP SECRET")

local static = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  if req.path == "/file" then
    return res:serve_file(www .. "/a.txt", { headers = { ["X-Served"] = "file" } })
  elseif req.path == "/file-missing" then
    return res:serve_file(www .. "/nope.txt")
  elseif req.path == "/file-mime" then
    return res:serve_file(www .. "/c.xyz", { mime_types = "xyz=application/x-test" })
  end
  res:serve_dir(www)
end))
local SBASE = "http://127.0.0.1:" .. static:port()

T.test("serve_dir: files with Content-Type by extension", function()
  local cases = {
    { "/a.txt", "^text/plain", "0123456789abcdef" },
    { "/index.html", "^text/html", "<h1>index</h1>\n" },
    { "/b.json", "^application/json", '{"k":1}' },
    { "/sub/c.txt", "^text/plain", "nested" },
    { "/", "^text/html", "<h1>index</h1>\n" },
  }
  for _, c in ipairs(cases) do
    local r = T.ok(parse_response(curl("-i " .. T.q(SBASE .. c[1]))), "response for " .. c[1])
    T.eq(r.status, 200, "status of " .. c[1])
    T.match(r.headers["content-type"], c[2], "Content-Type of " .. c[1])
    T.eq(r.body, c[3], "body of " .. c[1])
  end
end)

T.test("serve_dir: Range bytes=2-5 gives 206 with Content-Range", function()
  local r = parse_response(curl("-i -H 'Range: bytes=2-5' " .. T.q(SBASE .. "/a.txt")))
  T.eq(r.status, 206, "status")
  T.eq(r.body, "2345", "bytes 2..5")
  T.eq(r.headers["content-range"], "bytes 2-5/16", "Content-Range")
  T.eq(r.headers["content-length"], "4", "Content-Length")
  local r2 = parse_response(curl("-i -H 'Range: bytes=10-' " .. T.q(SBASE .. "/a.txt")))
  T.eq(r2.status, 206, "open-ended range status")
  T.eq(r2.body, "abcdef", "open-ended range body")
end)

T.test("serve_dir: ETag and If-None-Match -> 304", function()
  local r = parse_response(curl("-i " .. T.q(SBASE .. "/a.txt")))
  local etag = r.headers["etag"]
  T.ok(etag and #etag > 0, "ETag present")
  local r2 = parse_response(curl("-i -H " .. T.q("If-None-Match: " .. etag) .. " " .. T.q(SBASE .. "/a.txt")))
  T.eq(r2.status, 304, "status with a matching ETag")
  T.eq(r2.body, "", "no body with 304")
  local r3 = parse_response(curl("-i -H 'If-None-Match: \"other\"' " .. T.q(SBASE .. "/a.txt")))
  T.eq(r3.status, 200, "status with another ETag")
  T.eq(r3.body, "0123456789abcdef", "body with another ETag")
end)

T.test("serve_dir: a missing file is 404", function()
  local out = curl("-o /dev/null -w '%{http_code}' " .. T.q(SBASE .. "/missing.txt"))
  T.eq(out, "404", "status")
end)

T.test("serve_dir: a directory without a slash redirects", function()
  local r = parse_response(curl("-i " .. T.q(SBASE .. "/sub")))
  T.eq(r.status, 301, "status")
  T.eq(r.headers["location"], "/sub/", "Location")
end)

T.test("serve_dir: ../ does not escape the root", function()
  for _, path in ipairs({ "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                          "/..%2fsecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt" }) do
    local out, rc = curl("--path-as-is -i " .. T.q(SBASE .. path))
    T.eq(rc, 0, "curl exit status for " .. path)
    local r = T.ok(parse_response(out), "a response for " .. path)
    T.ok(r.status ~= 200, "not 200 for " .. path .. " (got " .. tostring(r.status) .. ")")
    T.ok(not out:find("TOP SECRET", 1, true), "the secret is not served for " .. path)
  end
  local out = py([[
data = raw(b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=1)
sys.stdout.write(data.decode("latin-1"))
]], static:port())
  T.match(out, "^HTTP/1%.1 [45]%d%d ", "raw request status")
  T.ok(not out:find("TOP SECRET", 1, true), "raw request: the secret is not served")
end)

T.test("serve_dir/serve_file honour Connection: close and HTTP/1.0", function()
  -- Like res:send (see "HTTP/1.0 requests get Connection: close ..."), a
  -- served file must end the connection when the client asked for it.
  local out, rc = py([[
for path in [b"/a.txt", b"/missing.txt", b"/file"]:
    for req in [b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET " + path + b" HTTP/1.0\r\n\r\n"]:
        data = raw(req, timeout=1)
        print(repr(req.split(b"\r\n")[0]), "TIMEOUT" if b"<TIMEOUT" in data else "closed",
              data.split(b"\r\n")[0].decode())
]], static:port())
  T.eq(rc, 0, "python exit status")
  local n, left_open = 0, {}
  for line in out:gmatch("[^\n]+") do
    n = n + 1
    T.match(line, " HTTP/1%.1 %d+ ", "a response: " .. line)
    if not line:find(" closed ", 1, true) then
      left_open[#left_open + 1] = line
    end
  end
  T.eq(n, 6, "requests")
  T.eq(table.concat(left_open, "; "), "", "requests after which the server kept the connection open")
end)

T.test("serve_file: a file with extra headers, 404 when missing, mime_types", function()
  local r = parse_response(curl("-i " .. T.q(SBASE .. "/file")))
  T.eq(r.status, 200, "status")
  T.eq(r.body, "0123456789abcdef", "body")
  T.eq(r.headers["x-served"], "file", "extra header")
  T.match(r.headers["content-type"], "^text/plain", "Content-Type")
  local r2 = parse_response(curl("-i -H 'Range: bytes=0-1' " .. T.q(SBASE .. "/file")))
  T.eq(r2.status, 206, "range status")
  T.eq(r2.body, "01", "range body")
  T.eq(curl("-o /dev/null -w '%{http_code}' " .. T.q(SBASE .. "/file-missing")), "404", "missing file")
  local r3 = parse_response(curl("-i " .. T.q(SBASE .. "/file-mime")))
  T.eq(r3.headers["content-type"], "application/x-test", "custom MIME type")
  T.eq(r3.body, "custom type", "body")
end)

T.test("serve_dir keeps the connection alive for following requests", function()
  local out, rc, err = curl("-v " .. T.q(SBASE .. "/a.txt") .. " " .. T.q(SBASE .. "/sub/c.txt") .. " "
                            .. T.q(SBASE .. "/a.txt"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "0123456789abcdefnested0123456789abcdef", "bodies")
  T.match(err, "Re%-using existing connection", "connection reused")
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

T.test("header values with CR/LF raise in the handler, which becomes a 500", function()
  local results = {}
  routes["/crlf"] = function(req, res)
    -- T.raises inside the handler: a failed assertion would also be a 500,
    -- so the outcome is recorded and checked below.
    results.raises = pcall(T.raises, "must not contain CR, LF or NUL", res.send, res, 200, "x",
                           { ["X-Bad"] = "a\r\nInjected: yes" })
    results.raises_lf = pcall(T.raises, "must not contain", res.send, res, 200, "x", { ["X-Bad"] = "a\nb" })
    results.raises_nul = pcall(T.raises, "must not contain", res.send, res, 200, "x", { ["X-Bad"] = "a\0b" })
    results.raises_name = pcall(T.raises, "header name must not contain", res.send, res, 200, "x",
                                { ["X-Bad\r\nInjected"] = "v" })
    results.raises_set = pcall(function()
      res:set_header("X-Set", "v\r\nInjected: yes")
      T.raises("must not contain", res.send, res, 200, "x")
    end)
    res.default_headers = nil
    results.raises_begin = pcall(T.raises, "must not contain", res.begin, res, 200, { ["X-Bad"] = "\n" })
    results.sent = res.sent or res.chunked
    -- Unprotected: the error escapes the handler.
    res:send(200, "x", { ["X-Bad"] = "v\r\nInjected: yes" })
  end
  local out = curl("-i " .. T.q(BASE .. "/crlf"))
  local r = T.ok(parse_response(out), "a response")
  T.eq(results.raises, true, "CRLF in a value raises")
  T.eq(results.raises_lf, true, "LF in a value raises")
  T.eq(results.raises_nul, true, "NUL in a value raises")
  T.eq(results.raises_name, true, "CRLF in a name raises")
  T.eq(results.raises_set, true, "CRLF through set_header raises at send")
  T.eq(results.raises_begin, true, "CRLF in begin() headers raises")
  T.eq(results.sent, false, "nothing was sent by the failed calls")
  T.eq(r.status, 500, "status")
  T.ok(not out:find("Injected", 1, true), "no injected header")
end)

T.test("CR/LF in headers returned by the handler gives 500", function()
  routes["/crlf-return"] = function()
    return 200, "x", { ["X-Bad"] = "v\r\nInjected: yes" }
  end
  local out = curl("-i " .. T.q(BASE .. "/crlf-return"))
  T.eq(parse_response(out).status, 500, "status")
  T.ok(not out:find("Injected", 1, true), "no injected header")
end)

T.test("Content-Length / Transfer-Encoding / Connection other than close set by a handler give 500", function()
  -- The C layer writes the framing headers: a second, conflicting copy
  -- would let a client or proxy read the response differently.
  routes["/framing-cl"] = function()
    return 200, "x", { ["Content-Length"] = "99" }
  end
  routes["/framing-cl-set"] = function(req, res)
    res:set_header("content-length", 1) -- any spelling; set_header too
    return 200, "x"
  end
  routes["/framing-te"] = function(req, res)
    res:begin(200, { ["Transfer-Encoding"] = "chunked" })
    res:finish("x")
  end
  routes["/framing-keepalive"] = function()
    return 200, "x", { Connection = "keep-alive" }
  end
  local n0 = #logs
  for path, header in pairs({ ["/framing-cl"] = "Content-Length", ["/framing-cl-set"] = "content-length",
                              ["/framing-te"] = "Transfer-Encoding", ["/framing-keepalive"] = "Connection" }) do
    local out = curl("-i " .. T.q(BASE .. path))
    local r = T.ok(parse_response(out), "a parsable response for " .. path)
    T.eq(r.status, 500, path .. " status")
    T.eq(select(2, out:gsub("\r\n[Cc]ontent%-[Ll]ength:", "")), 1, path .. ": one Content-Length")
    T.ok(not out:lower():find("transfer-encoding", 1, true), path .. ": no Transfer-Encoding")
    local logged = false
    for i = n0 + 1, #logs do
      logged = logged or (logs[i].msg:find("GET " .. path .. " ", 1, true) ~= nil
                          and logs[i].msg:find("header '" .. header .. "'", 1, true) ~= nil)
    end
    T.ok(logged, path .. ": the log names the header " .. header)
  end
end)

T.test("Connection: close set by a handler: one Connection header, then the server closes", function()
  local closing_file
  routes["/conn-close"] = function(req, res)
    if req:query_params("how") == "set" then
      res:set_header("connection", "Close")
      return 200, "closing"
    elseif req:query_params("how") == "chunked" then
      res:begin(200, { Connection = "close" })
      res:write("clo")
      return res:finish("sing")
    elseif req:query_params("how") == "serve" then
      return res:serve_file(closing_file, { headers = { Connection = "close" } })
    end
    return 200, "closing", { Connection = "close" }
  end
  closing_file = T.tmpdir() .. "/closing.txt"
  T.write_file(closing_file, "closing")
  local out, rc = py([[
reqs = [
    ("keepalive", b"GET /conn-close HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("set", b"GET /conn-close?how=set HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("chunked", b"GET /conn-close?how=chunked HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("client_close", b"GET /conn-close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("http10", b"GET /conn-close HTTP/1.0\r\n\r\n"),
    ("http10_keepalive", b"GET /conn-close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
]
for name, data in reqs:
    r = raw(data, timeout=2)
    head = r.split(b"\r\n\r\n")[0].lower()
    print(name, r[:12].decode(), head.count(b"\r\nconnection:"),
          "timeout" if r.endswith(b"<TIMEOUT: the server did not close>") else "closed",
          r.endswith(b"closing") or r.endswith(b"0\r\n\r\n"))
]], PORT, 20000)
  T.eq(rc, 0, "python exit status")
  local seen = 0
  for name, status, count, closed, body_ok in out:gmatch("(%S+) (HTTP/1%.1 %d+) (%d+) (%S+) (%S+)\n") do
    seen = seen + 1
    T.eq(status, "HTTP/1.1 200", name .. " status")
    T.eq(count, "1", name .. ": exactly one Connection header")
    T.eq(closed, "closed", name .. ": the server closes the connection after the reply")
    T.eq(body_ok, "True", name .. ": the whole body")
  end
  T.eq(seen, 6, "responses: " .. out)
  T.match(out, "keepalive HTTP/1.1 200 1", "keep-alive request")

  -- serve_file: the header is sent once; closing is left to the client
  -- unless the request asked for it (then the C layer closes).
  out, rc = py([[
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"GET /conn-close?how=serve HTTP/1.1\r\nHost: x\r\n\r\n")
r = b""
while not r.endswith(b"closing"):
    r += s.recv(65536)
s.close()
print("serve", r.lower().count(b"\r\nconnection: close\r\n"))
r = raw(b"GET /conn-close?how=serve HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2)
print("serve_client_close", r.lower().count(b"\r\nconnection:"), r.endswith(b"closing"))
]], PORT, 20000)
  T.eq(rc, 0, "python exit status")
  T.eq(out, "serve 1\nserve_client_close 1 True\n", "serve_file with Connection: close")
end)

---------------------------------------------------------------------------
-- Deferred replies
---------------------------------------------------------------------------

T.test("a deferred reply from a timer 50 ms later reaches curl", function()
  local pending_before, pending_after, fired_at, started_at, body_later
  routes["/deferred"] = function(req, res)
    started_at = core.millis()
    mgr:set_timeout(50, function()
      fired_at = core.millis()
      pending_before = listener:pending_count()
      body_later = req:body()  -- still readable before the reply
      res:send(200, "later:" .. req:header("X-Id"))
      pending_after = listener:pending_count()
    end)
  end
  local out, rc = curl("-H 'X-Id: 7' --data-binary 'payload' " .. T.q(BASE .. "/deferred"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "later:7", "body")
  T.ok(fired_at - started_at >= 45, "replied after the timer (" .. (fired_at - started_at) .. " ms)")
  T.eq(pending_before, 1, "pending before the reply")
  T.eq(pending_after, 0, "pending after the reply")
  T.eq(body_later, "payload", "the request body in the timer")
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
  T.eq(saved_req.path, "/deferred-stale", "copied fields stay available")
end)

T.test("a client disconnecting before a deferred reply: send returns nil, 'connection closed'", function()
  local slow_res
  routes["/slow"] = function(req, res)
    slow_res = res
  end
  local out, rc = py([[
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.2)
s.close()
print("closed")
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.eq(out, "closed\n", "python output")
  T.ok(slow_res, "handler ran")
  T.ok(T.poll_until(mgr, function()
    return slow_res.closed or listener.pending[slow_res.id] == nil
  end, 3000), "the close was noticed")
  T.eq(listener.pending[slow_res.id], nil, "pending entry removed")
  local ok, err = slow_res:send(200, "too late")
  T.eq(ok, nil, "send result")
  T.eq(err, "connection closed", "send error")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "the server keeps serving")
end)

T.test("a chunked reply to a gone client fails without crashing", function()
  local slow_res
  routes["/slow-chunked"] = function(req, res)
    slow_res = res
  end
  py([[
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"GET /slow-chunked HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.2)
s.close()
]], PORT)
  T.ok(slow_res, "handler ran")
  T.ok(T.poll_until(mgr, function() return slow_res.closed end, 3000), "the close was noticed")
  local ok, err = slow_res:begin(200)
  T.eq(ok, nil, "begin result")
  T.eq(err, "connection closed", "begin error")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "the server keeps serving")
end)

---------------------------------------------------------------------------
-- Malformed requests and limits
---------------------------------------------------------------------------

T.test("a malformed request line gets 400, and the server keeps serving", function()
  local bad = { "GARBAGE\\r\\n\\r\\n", "GET / FOO/1.1\\r\\n\\r\\n", "GET / HTTP/1.1 extra\\r\\n\\r\\n" }
  for _, line in ipairs(bad) do
    local out, rc = py('data = raw(b"' .. line .. '")\nsys.stdout.write(data.decode("latin-1"))\n', PORT)
    T.eq(rc, 0, "python exit status")
    T.match(out, "^HTTP/1%.1 400", "response to " .. line)
    T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "a good request right after " .. line)
  end
  T.ok(find_log("request rejected with 400"), "rejection logged at info level")
end)

local limited = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
  return 200, "got " .. #req:body()
end, { max_body = 1000 }))
local LBASE = "http://127.0.0.1:" .. limited:port()

T.test("a body over opts.max_body gets 413", function()
  T.write_file(T.tmpdir() .. "/b2000", string.rep("x", 2000))
  T.write_file(T.tmpdir() .. "/b1000", string.rep("y", 1000))
  local function post_file(name)
    local path = T.tmpdir() .. "/" .. name
    return parse_response(curl("-i --data-binary @" .. T.q(path) .. " " .. T.q(LBASE .. "/")))
  end
  local r = post_file("b2000")
  T.eq(r.status, 413, "status over the limit")
  T.eq(r.headers["connection"], "close", "the connection closes")
  local r2 = post_file("b1000")
  T.eq(r2.status, 200, "status at the limit")
  T.eq(r2.body, "got 1000", "body at the limit")
  local out = py([[
data = raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n" + b"z" * 100)
sys.stdout.write(data.decode("latin-1"))
]], limited:port())
  T.match(out, "^HTTP/1%.1 413", "announced size over the limit, body not sent")
end)

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
  local out, rc = py([[
data = open(sys.argv[2], "rb").read()
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
c.request("POST", "/up", body=data)
r = c.getresponse()
print(r.status, r.read().decode())
print(len(data), zlib.adler32(data))
c.request("POST", "/small", body=b"tiny")
r = c.getresponse()
print(r.status, r.read().decode())
]], STPORT .. " " .. T.q(five_path), 15000)
  T.eq(rc, 0, "python exit status")
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
    local n = 0
    for _, e in ipairs(logs) do
      n = n + (e.msg:find(text, 1, true) and 1 or 0)
    end
    return n
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

T.test("a chunked request body over opts.max_body gets 413", function()
  local path = T.tmpdir() .. "/chunked-big.bin"
  T.write_file(path, string.rep("c", 5000))
  local r = parse_response(curl("-i -H 'Transfer-Encoding: chunked' --data-binary @" .. T.q(path) .. " "
                                .. T.q(LBASE .. "/")))
  T.eq(r and r.status, 413, "status")
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
  local out, rc = py([[
data = raw(b"GET /def-first HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=3)
sys.stdout.write(data.decode("latin-1"))
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.match(out, "^HTTP/1%.1 200 OK\r\n.-\r\n\r\nfirstHTTP/1%.1 200 OK\r\n.-\r\n\r\nsecond$", "responses")
end)

T.test("res:close() without a reply: curl sees an empty reply", function()
  local closed
  routes["/close"] = function(req, res)
    closed = res:close()
  end
  local _, rc, err = curl(T.q(BASE .. "/close"))
  T.eq(closed, true, "close result")
  T.eq(rc, 52, "curl exit status (empty reply)")
  T.match(err, "Empty reply", "curl message")
  T.eq(curl(T.q(BASE .. "/hello")), "hello\n", "the server keeps serving")
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

T.test("HEAD on a chunked route sends no chunks", function()
  local out, rc = py([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("HEAD", "/chunked")
r = c.getresponse()
print(r.status, repr(r.read()))
c.request("GET", "/hello")
r = c.getresponse()
print(r.status, repr(r.read()))
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.eq(out, "200 b''\n200 b'hello\\n'\n", "HEAD then GET on one connection")
end)

---------------------------------------------------------------------------
-- Peers and IPv6
---------------------------------------------------------------------------

T.test("req:remote_ip() is 127.0.0.1 and req:remote_port() python's port", function()
  local seen
  routes["/remote"] = function(req)
    seen = { ip = req:remote_ip(), port = req:remote_port(), addr = req:remote_addr() }
    return 200, "ok"
  end
  local out, rc = py([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("GET", "/remote")
port = c.sock.getsockname()[1]
c.getresponse().read()
print(port)
]], PORT)
  T.eq(rc, 0, "python exit status")
  T.eq(seen.ip, "127.0.0.1", "remote_ip")
  T.eq(type(seen.port), "number", "remote_port type")
  T.eq(seen.port, tonumber(out), "remote_port equals python's local port")
  T.eq(seen.addr, "127.0.0.1:" .. seen.port, "remote_addr")
end)

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

-- T.run ends with os.exit: remove the temporary files (the big bodies)
-- in front of it.
local real_exit = os.exit
os.exit = function(...)  -- luacheck: ignore 122
  os.execute("rm -rf " .. T.q(T.tmpdir()))
  return real_exit(...)
end

T.run()
