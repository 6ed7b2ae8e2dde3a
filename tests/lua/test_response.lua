-- The HTTP server's response (mongoose.http): what a handler returns or
-- sends (status, body, res:send), chunked replies (begin/write/finish),
-- static files (serve_dir, serve_file), res:close and replies deferred to
-- a timer, also to a client that is gone.
local T = require("testlib")
local H = require("testhttp").server()
local mgr, routes, PORT, BASE = H.mgr, H.routes, H.PORT, H.BASE
local curl, py, pyc, parse_response = H.curl, H.py, H.pyc, T.parse_response
local core = require("mongoose.core")
local listener = H.listener

-- Inside a handler (where a failed check would only be a 500): records
-- the error of fn(...), which must raise one matching pattern; check_raised
-- checks what was recorded, after the request.
local function raising(errs, pattern, what, fn, ...)
  local ok, err = pcall(fn, ...)
  errs[#errs + 1] = { pattern, what, ok and "no error" or tostring(err) }
end

local function check_raised(errs)
  for _, e in ipairs(errs) do
    T.match(e[3], e[1], e[2])
  end
end

-- The parsed reply to a GET of path from base (BASE by default): curl -i,
-- with the extra curl arguments args.
local function get(path, args, base)
  return parse_response(curl("-i " .. (args and args .. " " or "") .. T.q((base or BASE) .. path)))
end

local function file_sha256(path)
  local out = H.sh("sha256sum " .. T.q(path))
  return out:match("^(%x+)")
end

---------------------------------------------------------------------------
-- Status and body
---------------------------------------------------------------------------

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
  local r = get("/tuple")
  T.eq(r.status, 202, "status")
  T.eq(r.body, "accepted body", "body")
  T.eq(r.headers["x-tuple"], "1", "header")
end)

T.test("a handler returning only a status sends an empty body", function()
  routes["/status-only"] = function()
    return 200
  end
  local r = get("/status-only")
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
    local function try(pattern, what, ...)
      raising(errs, pattern, what, res.send, res, ...)
    end
    try("status must be an integer", "status 99", 99, "x")
    try("status must be an integer", "status 1000", 1000, "x")
    try("status must be an integer", "status 200.5", 200.5, "x")
    try("status must be an integer", "status '200'", "200", "x")
    try("body must be a string", "numeric body", 200, 42)
    try("headers must be a table", "string headers", 200, "x", "not a table")
    try("has a boolean value", "boolean header value", 200, "x", { ["X-Bool"] = true })
    try("header names must be strings", "numeric header name", 200, "x", { [1] = "x" })
    return 200, "fine"
  end
  T.eq(curl(T.q(BASE .. "/send-args")), "fine", "the response after the failed calls")
  T.eq(#errs, 8, "every call was tried")
  check_raised(errs)
end)
local MB = 1048576
local big_body = T.random_bytes(MB, 12345)
local big_path = T.tmpdir() .. "/big1m.bin"
T.write_file(big_path, big_body)
T.test("a 1 MB response body reaches curl intact (sha256)", function()
  routes["/download"] = function()
    return 200, big_body, { ["Content-Type"] = "application/octet-stream" }
  end
  local out, rc = curl("-o /dev/null -w '%{size_download} %{http_code}' " .. T.q(BASE .. "/download"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, MB .. " 200", "size and status")
  local sums = H.sh("curl -sS -m 5 " .. T.q(BASE .. "/download") .. " | sha256sum")
  T.eq(sums:match("^(%x+)"), file_sha256(big_path), "sha256 of the download")
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
  local r = get("/chunked")
  T.eq(r.headers["transfer-encoding"], "chunked", "Transfer-Encoding")
  T.eq(r.headers["content-length"], nil, "no Content-Length")
  T.eq(r.headers["content-type"], "text/plain", "Content-Type")
end)

T.test("chunks written from a timer reach curl", function()
  local r = get("/chunked-timer")
  T.eq(r.status, 200, "status")
  T.eq(r.headers["x-stream"], "1", "header from set_header")
  T.eq(r.body, "0;1;2;3;4;", "body")
end)

T.test("chunked responses are decoded by python, and keep-alive continues", function()
  local out = pyc([[
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
for path in ["/chunked", "/chunked-timer", "/hello"]:
    c.request("GET", path)
    r = c.getresponse()
    print(r.status, r.getheader("Transfer-Encoding"), repr(r.read().decode()))
]], PORT)
  T.eq(out, "200 chunked 'hello, chunked world'\n200 chunked '0;1;2;3;4;'\n200 None 'hello\\n'\n",
       "python output")
end)

T.test("chunked framing on the wire", function()
  local out = H.raw([[b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]])
  T.match(out, "\r\n\r\n7\r\nhello, \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n$", "chunks")
end)

T.test("write/finish without begin raise", function()
  local errs = {}
  routes["/write-nobegin"] = function(req, res)
    local not_begun = "needs a response started with begin"
    raising(errs, not_begun, "write before begin", res.write, res, "x")
    raising(errs, not_begun, "finish before begin", res.finish, res)
    res:begin(200)
    raising(errs, "chunk must be a string", "non-string chunk", res.write, res, 42)
    raising(errs, "already sent", "send after begin", res.send, res, 200, "x")
    res:finish("done")
    raising(errs, not_begun, "write after finish", res.write, res, "after")
  end
  T.eq(curl(T.q(BASE .. "/write-nobegin")), "done", "body")
  T.eq(#errs, 5, "every call was tried")
  check_raised(errs)
end)

T.test("HEAD on a chunked route sends no chunks", function()
  local out = pyc('head_then_hello("/chunked")\n', PORT)
  T.eq(out, "200 b''\n200 b'hello\\n'\n", "HEAD then GET on one connection")
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

-- get() from the static listener.
local function sget(path, args)
  return get(path, args, SBASE)
end

T.test("serve_dir: files with Content-Type by extension", function()
  local cases = {
    { "/a.txt", "^text/plain", "0123456789abcdef" },
    { "/index.html", "^text/html", "<h1>index</h1>\n" },
    { "/b.json", "^application/json", '{"k":1}' },
    { "/sub/c.txt", "^text/plain", "nested" },
    { "/", "^text/html", "<h1>index</h1>\n" },
  }
  for _, c in ipairs(cases) do
    local r = T.ok(sget(c[1]), "response for " .. c[1])
    T.eq(r.status, 200, "status of " .. c[1])
    T.match(r.headers["content-type"], c[2], "Content-Type of " .. c[1])
    T.eq(r.body, c[3], "body of " .. c[1])
  end
end)

T.test("serve_dir: Range bytes=2-5 gives 206 with Content-Range", function()
  local r = sget("/a.txt", "-H 'Range: bytes=2-5'")
  T.eq(r.status, 206, "status")
  T.eq(r.body, "2345", "bytes 2..5")
  T.eq(r.headers["content-range"], "bytes 2-5/16", "Content-Range")
  T.eq(r.headers["content-length"], "4", "Content-Length")
  local r2 = sget("/a.txt", "-H 'Range: bytes=10-'")
  T.eq(r2.status, 206, "open-ended range status")
  T.eq(r2.body, "abcdef", "open-ended range body")
end)

T.test("serve_dir: ETag and If-None-Match -> 304", function()
  local r = sget("/a.txt")
  local etag = r.headers["etag"]
  T.ok(etag and #etag > 0, "ETag present")
  local r2 = parse_response(curl("-i -H " .. T.q("If-None-Match: " .. etag) .. " " .. T.q(SBASE .. "/a.txt")))
  T.eq(r2.status, 304, "status with a matching ETag")
  T.eq(r2.body, "", "no body with 304")
  local r3 = sget("/a.txt", "-H 'If-None-Match: \"other\"'")
  T.eq(r3.status, 200, "status with another ETag")
  T.eq(r3.body, "0123456789abcdef", "body with another ETag")
end)

T.test("serve_dir: a missing file is 404", function()
  local out = curl("-o /dev/null -w '%{http_code}' " .. T.q(SBASE .. "/missing.txt"))
  T.eq(out, "404", "status")
end)

T.test("serve_dir: a directory without a slash redirects", function()
  local r = sget("/sub")
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
  local out = H.raw([[b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=1]],
                    static:port())
  T.match(out, "^HTTP/1%.1 [45]%d%d ", "raw request status")
  T.ok(not out:find("TOP SECRET", 1, true), "raw request: the secret is not served")
end)

T.test("serve_dir/serve_file honour Connection: close and HTTP/1.0", function()
  -- Like res:send (see "HTTP/1.0 requests get Connection: close ..."), a
  -- served file must end the connection when the client asked for it.
  local out = pyc([[
for path in [b"/a.txt", b"/missing.txt", b"/file"]:
    for req in [b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET " + path + b" HTTP/1.0\r\n\r\n"]:
        data = raw(req, timeout=1)
        print(repr(req.split(b"\r\n")[0]), "TIMEOUT" if b"<TIMEOUT" in data else "closed",
              data.split(b"\r\n")[0].decode())
]], static:port())
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
  local r = sget("/file")
  T.eq(r.status, 200, "status")
  T.eq(r.body, "0123456789abcdef", "body")
  T.eq(r.headers["x-served"], "file", "extra header")
  T.match(r.headers["content-type"], "^text/plain", "Content-Type")
  local r2 = sget("/file", "-H 'Range: bytes=0-1'")
  T.eq(r2.status, 206, "range status")
  T.eq(r2.body, "01", "range body")
  T.eq(curl("-o /dev/null -w '%{http_code}' " .. T.q(SBASE .. "/file-missing")), "404", "missing file")
  local r3 = sget("/file-mime")
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

T.test("a deferred reply 600 ms later (the quiet connection is parked meanwhile) reaches curl", function()
  local waited
  routes["/deferred-long"] = function(req, res)
    local started_at = core.millis()
    mgr:set_timeout(600, function()
      waited = core.millis() - started_at
      res:send(200, "late:" .. req:body())
    end)
  end
  local out, rc = curl("--data-binary 'x' " .. T.q(BASE .. "/deferred-long") .. " " .. T.q(BASE .. "/hello"))
  T.eq(rc, 0, "curl exit status")
  T.eq(out, "late:xhello\n", "the deferred reply, then the next request on the connection")
  T.ok(waited >= 590, "replied after the timer (" .. tostring(waited) .. " ms)")
end)

T.test("a client disconnecting before a deferred reply: send returns nil, 'connection closed'", function()
  local slow_res
  routes["/slow"] = function(req, res)
    slow_res = res
  end
  local out = pyc([[
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.2)
s.close()
print("closed")
]], PORT)
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

T.run()
