-- Integration tests of the HTTP client (mgr:fetch, mgr:http_request,
-- mongoose.fetch) against this project's server on the same manager and
-- against python servers running in the background.
local T = require("testlib")
local mongoose = require("mongoose")
local core = mongoose.core

local mgr, logs = T.logging_manager()

local function find_log(text)
  return T.find_log(logs, text)
end

local random_bytes = T.random_bytes

---------------------------------------------------------------------------
-- Background python processes: started through script files (so "$$"
-- reaches the shell that execs them), killed at exit, also on failure.
---------------------------------------------------------------------------

local pid_files = {}
local script_seq = 0

-- Starts a background command; its pid is recorded so that it can be
-- killed. `timeout 60` bounds its life even if this process dies.
local function start_background(cmd)
  script_seq = script_seq + 1
  local base = T.tmpdir() .. "/bg" .. script_seq
  T.write_file(base .. ".sh", "echo $$ >" .. base .. ".pid\nexec timeout 60 " .. cmd .. "\n")
  pid_files[#pid_files + 1] = base .. ".pid"
  return T.spawn("sh " .. base .. ".sh")
end

local function kill_background()
  for _, f in ipairs(pid_files) do
    local pid = tonumber(T.read_file(f) or "")
    if pid then
      os.execute("kill " .. pid .. " 2>/dev/null")
    end
  end
  pid_files = {}
end

local free_port = T.free_port

---------------------------------------------------------------------------
-- This project's server on the same manager
---------------------------------------------------------------------------

local seen = {}
local big = random_bytes(1048576, 4242)

local routes = {
  ["/hello"] = function()
    return 200, "hello\n", { ["Content-Type"] = "text/plain", ["X-Multi"] = { "a", "b" } }
  end,
  ["/echo"] = function(req)
    seen.echo = { method = req.method, headers = req:headers(), query = req.query, path = req.path }
    return 200, req:body(), { ["X-Method"] = req.method, ["X-Length"] = #req:body() }
  end,
  ["/big"] = function()
    return 200, big
  end,
  ["/status"] = function(req)
    local code = tonumber(req:query_params("code"))
    return code, code ~= 204 and "status body" or nil
  end,
  ["/never"] = function(req, res)
    seen.never = res  -- never answered
  end,
  ["/late"] = function(req, res)
    mgr:set_timeout(100, function()
      res:send(200, "late")
    end)
  end,
  ["/chunked"] = function(req, res)
    res:begin(200)
    res:write("hello, ")
    res:finish("chunks")
  end,
  ["/close"] = function(req, res)
    res:close()
  end,
  ["/nested-fetch"] = function()
    -- A handler runs in a task: fetch waits there (here for a refused
    -- connection) while the manager serves on.
    local resp, err = mgr:fetch("http://127.0.0.1:1/", { timeout = 2000 })
    seen.nested = { resp = resp, err = err }
    return 200, "nested"
  end,
}

local server = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  local fn = routes[req.path]
  if fn then
    return fn(req, res)
  end
  seen.root = { path = req.path, query = req.query }
  return 404, "no route\n"
end))
local BASE = "http://127.0.0.1:" .. server:port()

T.test("fetch: status, reason, body and case-insensitive headers", function()
  local resp, err = mgr:fetch(BASE .. "/hello", { timeout = 3000 })
  T.ok(resp, "response (" .. tostring(err) .. ")")
  T.eq(err, nil, "no error")
  T.eq(resp.status, 200, "status")
  T.eq(resp.reason, "OK", "reason")
  T.eq(resp.version, "HTTP/1.1", "version")
  T.eq(resp.body, "hello\n", "body")
  T.eq(resp:header("Content-Type"), "text/plain", "Content-Type")
  T.eq(resp:header("content-type"), "text/plain", "content-type")
  T.eq(resp:header("CONTENT-TYPE"), "text/plain", "CONTENT-TYPE")
  T.eq(resp:header("Content-Length"), "6", "Content-Length")
  T.eq(resp:header("X-Multi"), "a, b", "repeated headers joined")
  T.eq(resp:header("X-Missing"), nil, "missing header")
  T.eq(resp.headers["content-type"], "text/plain", "headers table has lower-case names")
end)

T.test("fetch: POST body and request headers reach the server and are echoed", function()
  local resp = assert(mgr:fetch(BASE .. "/echo?x=1", {
    method = "POST", body = "hello body", headers = { ["X-Test"] = "yes" }, timeout = 3000,
  }))
  T.eq(resp.status, 200, "status")
  T.eq(resp.body, "hello body", "echoed body")
  T.eq(resp:header("x-method"), "POST", "method seen by the server")
  T.eq(seen.echo.headers["x-test"], "yes", "custom request header")
  T.eq(seen.echo.headers["content-length"], "10", "Content-Length sent")
  T.eq(seen.echo.headers["host"], "127.0.0.1:" .. server:port(), "Host header")
  T.eq(seen.echo.path, "/echo", "path")
  T.eq(seen.echo.query, "x=1", "query")
end)

T.test("fetch: PUT, DELETE and PATCH", function()
  for _, m in ipairs({ "PUT", "DELETE", "PATCH" }) do
    local body
    if m ~= "DELETE" then
      body = m:lower()
    end
    local resp = assert(mgr:fetch(BASE .. "/echo", { method = m, body = body, timeout = 3000 }))
    T.eq(resp:header("X-Method"), m, "method " .. m)
    T.eq(resp.body, m == "DELETE" and "" or m:lower(), "body for " .. m)
  end
  local resp = assert(mgr:fetch(BASE .. "/echo", { method = "PUT", timeout = 3000 }))
  T.eq(seen.echo.headers["content-length"], "0", "PUT without a body sends Content-Length: 0")
  T.eq(resp.body, "", "empty body")
end)

T.test("fetch: HEAD gets the headers and an empty body", function()
  local resp = assert(mgr:fetch(BASE .. "/hello", { method = "HEAD", timeout = 3000 }))
  T.eq(resp.status, 200, "status")
  T.eq(resp:header("content-length"), "6", "Content-Length of the GET body")
  T.eq(resp.body, "", "no body")
end)

T.test("fetch: non-2xx statuses are responses, not errors", function()
  for _, code in ipairs({ 201, 204, 404, 418, 500 }) do
    local resp, err = mgr:fetch(BASE .. "/status?code=" .. code, { timeout = 3000 })
    T.ok(resp, "response for " .. code .. " (" .. tostring(err) .. ")")
    T.eq(resp.status, code, "status")
    T.eq(resp.body, code == 204 and "" or "status body", "body of " .. code)
  end
end)

T.test("fetch: a 1 MB response arrives intact", function()
  local resp = assert(mgr:fetch(BASE .. "/big", { timeout = 5000 }))
  T.eq(resp.status, 200, "status")
  T.eq(#resp.body, #big, "length")
  T.ok(resp.body == big, "bytes")
end)

T.test("fetch: a 1 MB POST body is echoed intact", function()
  local resp = assert(mgr:fetch(BASE .. "/echo", { method = "POST", body = big, timeout = 5000 }))
  T.eq(resp:header("X-Length"), tostring(#big), "length seen by the server")
  T.ok(resp.body == big, "echoed bytes")
end)

T.test("fetch: chunked responses are decoded", function()
  local resp = assert(mgr:fetch(BASE .. "/chunked", { timeout = 3000 }))
  T.eq(resp.status, 200, "status")
  T.eq(resp.body, "hello, chunks", "body")
end)

T.test("fetch: a deferred reply is waited for", function()
  local t0 = core.millis()
  local resp = assert(mgr:fetch(BASE .. "/late", { timeout = 3000 }))
  T.eq(resp.body, "late", "body")
  T.ok(core.millis() - t0 >= 90, "waited for the reply")
end)

T.test("fetch: a URL without a path or with only a query", function()
  local resp = assert(mgr:fetch(BASE, { timeout = 3000 }))
  T.eq(resp.status, 404, "status")
  T.eq(seen.root.path, "/", "path of a bare URL")
  resp = assert(mgr:fetch(BASE .. "?q=1", { timeout = 3000 }))
  T.eq(resp.status, 404, "status")
  T.eq(seen.root.path, "/", "path")
  T.eq(seen.root.query, "q=1", "query")
end)

T.test("fetch: the server closing without a response is an error", function()
  local resp, err = mgr:fetch(BASE .. "/close", { timeout = 3000 })
  T.eq(resp, nil, "no response")
  T.match(err, "closed", "error")
end)

T.test("fetch: a server that never answers -> timeout error with opts.timeout = 200", function()
  local before = mgr:connection_count()
  local t0 = core.millis()
  local resp, err = mgr:fetch(BASE .. "/never", { timeout = 200 })
  local elapsed = core.millis() - t0
  T.eq(resp, nil, "no response")
  T.match(err, "timeout", "error")
  T.match(err, "200 ms", "error names the timeout")
  T.ok(elapsed >= 190 and elapsed < 2000, "elapsed " .. elapsed .. " ms")
  T.ok(seen.never, "the server got the request")
  -- The client connection is closed, so the server sees its peer go.
  T.ok(T.poll_until(mgr, function() return seen.never.closed end, 2000), "the server noticed the close")
  T.ok(T.poll_until(mgr, function() return mgr:connection_count() <= before end, 2000),
       "no connection left behind")
end)

T.test("http_request: the callback runs from a later poll", function()
  local got, got_err
  local calls = 0
  local handle = mgr:http_request(BASE .. "/hello", { timeout = 3000 }, function(resp, err)
    calls = calls + 1
    got, got_err = resp, err
  end)
  T.ok(handle and handle.cancel, "http_request returns a handle")
  T.eq(calls, 0, "not called synchronously")
  T.ok(T.poll_until(mgr, function() return calls > 0 end, 3000), "callback called")
  T.eq(got_err, nil, "no error")
  T.eq(got.status, 200, "status")
  T.eq(got.body, "hello\n", "body")
  T.poll_until(mgr, function() return false end, 50)
  T.eq(calls, 1, "called once")
end)

T.test("http_request: 20 concurrent requests all complete with their own bodies", function()
  local results, done = {}, 0
  for i = 1, 20 do
    assert(mgr:http_request(BASE .. "/echo", { method = "POST", body = "req" .. i, timeout = 3000 },
                            function(resp, err)
                              results[i] = resp and resp.body or err
                              done = done + 1
                            end))
  end
  T.ok(T.poll_until(mgr, function() return done == 20 end, 5000), "all callbacks called")
  for i = 1, 20 do
    T.eq(results[i], "req" .. i, "body " .. i)
  end
end)

T.test("http_request: a failing callback is logged and the manager keeps working", function()
  local called = false
  assert(mgr:http_request(BASE .. "/hello", { timeout = 3000 }, function()
    called = true
    error("callback exploded")
  end))
  T.ok(T.poll_until(mgr, function() return called end, 3000), "callback called")
  local e = T.ok(find_log("HTTP client callback failed"), "logged")
  T.match(e.msg, "callback exploded", "the error is in the log")
  T.eq(assert(mgr:fetch(BASE .. "/hello", { timeout = 3000 })).status, 200, "next fetch")
end)

T.test("fetch from inside a handler waits and returns its error", function()
  local resp = assert(mgr:fetch(BASE .. "/nested-fetch", { timeout = 3000 }))
  T.eq(resp.body, "nested", "the handler went on")
  T.eq(seen.nested.resp, nil, "no response from port 1")
  T.match(seen.nested.err, "refused", "the nested fetch's error")
end)

---------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------

T.test("connection refused -> nil and an error containing 'refused'", function()
  local port = free_port()
  local resp, err = mgr:fetch("http://127.0.0.1:" .. port .. "/", { timeout = 3000 })
  T.eq(resp, nil, "no response")
  T.match(err, "refused", "error")
  local resp2, err2 = mongoose.fetch("http://127.0.0.1:" .. port .. "/", { timeout = 3000 })
  T.eq(resp2, nil, "mongoose.fetch: no response")
  T.match(err2, "refused", "mongoose.fetch error")
end)

T.test("invalid URLs -> nil, err", function()
  local cases = {
    { "not a url", "invalid URL" },
    { "", "invalid URL" },
    { "http://", "invalid URL" },
    { "ftp://127.0.0.1/", "unsupported URL scheme" },
  }
  for _, c in ipairs(cases) do
    local resp, err = mgr:fetch(c[1], { timeout = 1000 })
    T.eq(resp, nil, "no response for " .. c[1])
    T.match(err, c[2], "error for '" .. c[1] .. "'")
  end
  local called = false
  local ok, err = mgr:http_request("bogus", nil, function() called = true end)
  T.eq(ok, nil, "http_request result")
  T.match(err, "invalid URL", "http_request error")
  T.poll_until(mgr, function() return called end, 50)
  T.eq(called, false, "the callback is not called")
  local resp, err2 = mongoose.fetch("nope")
  T.eq(resp, nil, "mongoose.fetch result")
  T.match(err2, "invalid URL", "mongoose.fetch error")
end)

T.test("a port number above 65535 is an error, not another port", function()
  -- 65536 + P must not silently become port P.
  local hits = 0
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function()
    hits = hits + 1
    return 200, "wrong port"
  end))
  local port = l:port()
  local resp, err = mgr:fetch("http://127.0.0.1:" .. (port + 65536) .. "/", { timeout = 1000 })
  l:close()
  T.eq(hits, 0, "requests that reached port " .. port)
  T.eq(resp, nil, "no response (got " .. tostring(resp and resp.body) .. ")")
  T.ok(err, "an error")
end)

T.test("argument errors raise", function()
  local cb = function() end
  T.raises("url must be a string", mgr.fetch, mgr, 42)
  T.raises("url must be a string", mgr.fetch, mgr, nil)
  T.raises("url must be a string", mgr.http_request, mgr, {}, nil, cb)
  T.raises("opts must be a table", mgr.fetch, mgr, BASE, "opts")
  T.raises("callback must be a function", mgr.http_request, mgr, BASE, {}, nil)
  T.raises("callback must be a function", mgr.http_request, mgr, BASE, {}, "cb")
  T.raises("method must be an upper%-case token", mgr.fetch, mgr, BASE, { method = "get" })
  T.raises("method must be an upper%-case token", mgr.fetch, mgr, BASE, { method = "GET /x HTTP/1.1\r\n" })
  T.raises("method must be an upper%-case token", mgr.fetch, mgr, BASE, { method = 1 })
  T.raises("body must be a string", mgr.fetch, mgr, BASE, { method = "POST", body = 42 })
  T.raises("must not contain CR, LF or NUL", mgr.fetch, mgr, BASE, { headers = { ["X-A"] = "a\r\nX-B: b" } })
  T.raises("url must be a string", mongoose.fetch, 42)
  -- Nothing was left pending by the failed calls.
  T.eq(assert(mgr:fetch(BASE .. "/hello", { timeout = 3000 })).status, 200, "fetch still works")
end)

T.test("a closed manager raises", function()
  local m = assert(mongoose.new_manager())
  m:close()
  T.raises("manager is closed", m.fetch, m, BASE)
  T.raises("manager is closed", m.http_request, m, BASE, nil, function() end)
end)

---------------------------------------------------------------------------
-- Python servers
---------------------------------------------------------------------------

local docroot = T.tmpdir() .. "/pyroot"
os.execute("mkdir -p " .. T.q(docroot))
T.write_file(docroot .. "/hello.txt", "hello from python\n")
T.write_file(docroot .. "/big.bin", big)

local py_port
-- Starts python's http.server once and waits until it answers.
local function python_server()
  if py_port then
    return "http://127.0.0.1:" .. py_port
  end
  local port = free_port()
  start_background(T.python .. " -m http.server --bind 127.0.0.1 " .. port .. " --directory " .. T.q(docroot))
  local url = "http://127.0.0.1:" .. port
  local deadline = core.millis() + 8000
  while true do
    local resp = mgr:fetch(url .. "/hello.txt", { timeout = 500 })
    if resp and resp.status == 200 then
      break
    end
    T.ok(core.millis() < deadline, "python http.server answers within 8 s")
    T.poll_until(mgr, function() return false end, 50)
  end
  py_port = port
  return url
end

-- A test fetching path from python's http.server on mgr (within
-- timeout_ms, 3 s by default): a response with status, and fn(resp)
-- checks the rest.
local function py_test(name, path, status, fn, timeout_ms)
  T.test(name, function()
    local resp, err = mgr:fetch(python_server() .. path, { timeout = timeout_ms or 3000 })
    T.ok(resp, "response (" .. tostring(err) .. ")")
    T.eq(resp.status, status, "status")
    fn(resp)
  end)
end

py_test("python http.server: a file with its headers", "/hello.txt", 200, function(resp)
  T.eq(resp.body, "hello from python\n", "body")
  T.eq(resp:header("Content-Length"), "18", "Content-Length")
  T.match(resp:header("content-type"), "^text/plain", "Content-Type")
  T.match(resp:header("SERVER"), "SimpleHTTP", "Server")
end)

py_test("python http.server: 404 for a missing file", "/missing.txt", 404, function(resp)
  T.eq(resp.reason, "File not found", "reason")
end)

py_test("python http.server: a 1 MB file arrives intact", "/big.bin", 200, function(resp)
  T.eq(#resp.body, #big, "length")
  T.ok(resp.body == big, "bytes")
end, 5000)

py_test("python http.server: directory listing", "/", 200, function(resp)
  T.match(resp.body, "hello%.txt", "the listing names the file")
end)

T.test("mongoose.fetch on a temporary manager", function()
  local url = python_server()
  local resp, err = mongoose.fetch(url .. "/hello.txt", { timeout = 3000 })
  T.ok(resp, "response (" .. tostring(err) .. ")")
  T.eq(resp.status, 200, "status")
  T.eq(resp.body, "hello from python\n", "body")
end)

T.test("fetch from python's server while this manager also serves", function()
  local url = python_server()
  local results, done = {}, 0
  local function cb(i)
    return function(resp, err)
      results[i] = resp and resp.body or err
      done = done + 1
    end
  end
  assert(mgr:http_request(url .. "/hello.txt", { timeout = 3000 }, cb(1)))
  assert(mgr:http_request(BASE .. "/late", { timeout = 3000 }, cb(2)))
  assert(mgr:http_request(url .. "/hello.txt", { timeout = 3000 }, cb(3)))
  T.ok(T.poll_until(mgr, function() return done == 3 end, 5000), "all done")
  T.eq(results[1], "hello from python\n", "python 1")
  T.eq(results[2], "late", "own server")
  T.eq(results[3], "hello from python\n", "python 2")
end)

-- A python server speaking raw HTTP; behaviour picked by argv[2].
local RAW_SERVER = [==[
import socket, sys, os, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(5)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.settimeout(10)
c, _ = s.accept()
c.settimeout(10)
ANSWERS = {
    "close": [b"HTTP/1.0 200 OK\r\nX-Raw: 1\r\n\r\nbody until close"],
    "barelf": [b"HTTP/1.1 200 OK\nX-Raw: 1\nContent-Length: 5\n\nhello"],
    "fold": [b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n \t b \r\nContent-Length: 2\r\n\r\nok"],
    "split": [b"HTTP/1.1 20", b"0 OK\r\nX-Raw: 1\r", b"\nContent-Length: 4\r\n\r", b"\nbody"],
    "te-cl": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n"],
    "bighead": [b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok"],
    "te-other": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n"
                 b"not gzip, up to the close"],
}
if sys.argv[2] == "silent":
    time.sleep(10)
else:
    c.recv(65536)
    for piece in ANSWERS[sys.argv[2]]:
        c.sendall(piece)
        time.sleep(0.05)
    c.close()
]==]

local function raw_server(mode)
  script_seq = script_seq + 1
  local base = T.tmpdir() .. "/raw" .. script_seq
  T.write_file(base .. ".py", RAW_SERVER)
  start_background(T.python .. " " .. base .. ".py " .. base .. ".port " .. mode)
  T.ok(T.poll_until(mgr, function() return T.read_file(base .. ".port") end, 5000), "raw server started")
  return "http://127.0.0.1:" .. T.read_file(base .. ".port")
end

T.test("a python server that never answers -> timeout error", function()
  local url = raw_server("silent")
  local t0 = core.millis()
  local resp, err = mgr:fetch(url .. "/", { timeout = 200 })
  local elapsed = core.millis() - t0
  T.eq(resp, nil, "no response")
  T.match(err, "timeout after 200 ms", "error")
  T.ok(elapsed >= 190 and elapsed < 2000, "elapsed " .. elapsed .. " ms")
end)

T.test("a response without Content-Length is read until the server closes", function()
  local url = raw_server("close")
  local resp, err = mgr:fetch(url .. "/", { timeout = 3000 })
  T.ok(resp, "response (" .. tostring(err) .. ")")
  T.eq(resp.status, 200, "status")
  T.eq(resp.version, "HTTP/1.0", "version")
  T.eq(resp:header("X-Raw"), "1", "header")
  T.eq(resp.body, "body until close", "body")
end)

T.test("response heads: bare LF line ends, folded lines, a head in pieces", function()
  local resp, err = mgr:fetch(raw_server("barelf") .. "/", { timeout = 3000 })
  T.ok(resp, "bare LF: response (" .. tostring(err) .. ")")
  T.eq(resp.status, 200, "bare LF: status")
  T.eq(resp.reason, "OK", "bare LF: reason")
  T.eq(resp:header("X-Raw"), "1", "bare LF: header")
  T.eq(resp.body, "hello", "bare LF: body")
  resp, err = mgr:fetch(raw_server("fold") .. "/", { timeout = 3000 })
  T.ok(resp, "folded: response (" .. tostring(err) .. ")")
  T.eq(resp:header("X-Fold"), "a b", "a folded line joins its field with a space")
  T.eq(resp.body, "ok", "folded: body")
  resp, err = mgr:fetch(raw_server("split") .. "/", { timeout = 3000 })
  T.ok(resp, "in pieces: response (" .. tostring(err) .. ")")
  T.eq(resp.status, 200, "in pieces: status")
  T.eq(resp:header("x-raw"), "1", "in pieces: header")
  T.eq(resp.body, "body", "in pieces: body")
end)

T.test("a response head over 64 KiB is an error", function()
  local resp, err = mgr:fetch(raw_server("bighead") .. "/", { timeout = 3000 })
  T.eq(resp, nil, "no response")
  T.eq(err, "response head too large", "error")
end)

T.test("body length: chunked over Content-Length, another transfer coding up to the close", function()
  local resp, err = mgr:fetch(raw_server("te-cl") .. "/", { timeout = 3000 })
  T.ok(resp, "chunked and Content-Length: response (" .. tostring(err) .. ")")
  T.eq(resp.body, "hello", "chunked wins over Content-Length")
  resp, err = mgr:fetch(raw_server("te-other") .. "/", { timeout = 3000 })
  T.ok(resp, "gzip: response (" .. tostring(err) .. ")")
  T.eq(resp.body, "not gzip, up to the close", "read to the close, not Content-Length")
end)

-- Background processes are killed whatever happens to the tests.
T.on_exit(kill_background)

T.run()
