-- Header blocks (mongoose.headers): the one decoder behind req:header()
-- and req:headers(), and the building of response heads: values from
-- set_header, returned tables, lists and numbers; CR, LF and NUL refused;
-- the framing headers (Content-Length, Transfer-Encoding, Connection) left
-- to the C layer, and Connection: close honoured.
local T = require("testlib")
local H = require("testhttp").server()
local routes, PORT, BASE = H.routes, H.PORT, H.BASE
local curl, pyc, parse_response = H.curl, H.pyc, T.parse_response
local logs = H.logs

---------------------------------------------------------------------------
-- Request headers
---------------------------------------------------------------------------

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
-- Response headers
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
  -- Each of these header lines is in the head.
  for _, line in ipairs({
    { "X%-Reply: yes", "X-Reply" },
    { "X%-Number: 42", "numeric header value" },
    { "X%-List: one", "first value of a list" },
    { "X%-List: two", "second value of a list" },
    { "X%-Default: from%-set%-header", "set_header" },
    { "X%-Overridden: new", "returned header wins over set_header" },
  }) do
    T.match(r.head, "\r\n" .. line[1] .. "\r\n", line[2])
  end
  T.ok(not r.head:find("X-Overridden: old", 1, true), "the set_header value is not sent too")
  T.eq(r.headers["content-type"], "text/x-test", "Content-Type")
  T.eq(r.headers["content-length"], "4", "Content-Length")
end)

-- curl -i of path: a 500, with no "Injected" header in it.
local function refused_500(path)
  local out = curl("-i " .. T.q(BASE .. path))
  local r = T.ok(parse_response(out), "a response")
  T.eq(r.status, 500, "status")
  T.ok(not out:find("Injected", 1, true), "no injected header")
end

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
  refused_500("/crlf")
  T.eq(results.raises, true, "CRLF in a value raises")
  T.eq(results.raises_lf, true, "LF in a value raises")
  T.eq(results.raises_nul, true, "NUL in a value raises")
  T.eq(results.raises_name, true, "CRLF in a name raises")
  T.eq(results.raises_set, true, "CRLF through set_header raises at send")
  T.eq(results.raises_begin, true, "CRLF in begin() headers raises")
  T.eq(results.sent, false, "nothing was sent by the failed calls")
end)

T.test("CR/LF in headers returned by the handler gives 500", function()
  routes["/crlf-return"] = function()
    return 200, "x", { ["X-Bad"] = "v\r\nInjected: yes" }
  end
  refused_500("/crlf-return")
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
  local out = pyc([[
reqs = {
    "keepalive": b"GET /conn-close HTTP/1.1\r\nHost: x\r\n\r\n",
    "set": b"GET /conn-close?how=set HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunked": b"GET /conn-close?how=chunked HTTP/1.1\r\nHost: x\r\n\r\n",
    "client_close": b"GET /conn-close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "http10": b"GET /conn-close HTTP/1.0\r\n\r\n",
    "http10_keepalive": b"GET /conn-close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
}
for name, data in reqs.items():
    r = raw(data, timeout=2)
    head = r.split(b"\r\n\r\n")[0].lower()
    print(name, r[:12].decode(), head.count(b"\r\nconnection:"),
          "timeout" if r.endswith(b"<TIMEOUT>") else "closed",
          r.endswith(b"closing") or r.endswith(b"0\r\n\r\n"))
]], PORT, 20000)
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
  out = pyc([[
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
  T.eq(out, "serve 1\nserve_client_close 1 True\n", "serve_file with Connection: close")
end)

T.run()
