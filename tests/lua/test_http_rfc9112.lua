-- RFC 9112 request rules the glue enforces (issue 12), each with a raw
-- client followed by a pipelined good request on the same connection where
-- the connection survives: methods that are not tokens, Host, the version,
-- chunk extensions, trailer fields, chunked bodies streamed or counted
-- against max_body, and replies without content.
local T = require("testlib")
local P = require("testpy")
local H = require("testhttp").server({ log_level = "info" })
local mgr, routes, PORT = H.mgr, H.routes, H.PORT

local seen_trailers = {}
local seen_send_error
routes["/echo"] = function(req)
  seen_trailers[#seen_trailers + 1] = req:trailers()
  return 200, "got " .. #req:body()
end
routes["/204"] = function()
  return 204
end
routes["/304"] = function()
  return 304, nil, { ETag = '"v1"' }
end

routes["/204-with-body"] = function()
  return 204, "not allowed"
end
routes["/103-final"] = function(_, res)
  local ok, err = pcall(res.send, res, 103, "")
  seen_send_error = not ok and err or "no error"
  return 200, "after\n"
end

local function py(code, port)
  return P.check(mgr, P.HTTP .. code, port or PORT)
end

T.test("400 for a method that is not a token, for HTTP/1.1 without Host or with two; 505 for HTTP/1.7", function()
  local out = py([[
for name, req in [
        ("method", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("no_host", b"GET / HTTP/1.1\r\n\r\n"),
        ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("version", b"GET / HTTP/1.7\r\nHost: x\r\n\r\n"),
        ("http10_no_host", b"GET /hello HTTP/1.0\r\n\r\n"),
        ("http10_te", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")]:
    r = raw(req)
    out(name, status(r), b"Connection: close" in r)
]])
  P.expect_kv(out, {
    { "method", "400 True", "G@T" },
    { "no_host", "400 True", "HTTP/1.1 without Host" },
    { "two_hosts", "400 True", "two Host headers" },
    { "version", "505 True", "HTTP/1.7" },
    { "http10_no_host", "200 True", "HTTP/1.0 needs no Host" },
    { "http10_te", "400 True", "Transfer-Encoding in HTTP/1.0" },
  })
end)

T.test("chunk extensions are ignored; trailer fields are kept and readable", function()
  seen_trailers = {}
  local out = py([=[
s = conn()
s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"3;ext=1;name=\"v\"\r\nabc\r\n2 ; x\r\nde\r\n0;last\r\nX-Checksum: 42\r\nX-Other:  two words \r\n\r\n"
          b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
data = read_reply(s, lambda r: r.endswith(b"hello\n"))
bodies = [p.split(b"\r\n\r\n", 1)[1] for p in data.split(b"HTTP/1.1 ")[1:]]
out("bodies", bodies)
]=])
  T.eq(out, "bodies [b'got 5', b'hello\\n']\n")
  T.eq(seen_trailers[1]["x-checksum"], "42", "trailer field")
  T.eq(seen_trailers[1]["x-other"], "two words", "trailer value trimmed")
  T.eq(next(seen_trailers[1], nil) ~= nil, true, "trailers table")
end)

T.test("a chunked upload is streamed past stream_threshold; max_body counts decoded bytes", function()
  local st = { chunks = 0, total = 0, ended = false }
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    if not req.streaming then
      return 200, "buffered " .. #req:body()
    end
    req:on_body(function(piece)
      st.chunks = st.chunks + 1
      st.total = st.total + #piece
    end, function()
      st.ended = true
      st.trailer = req:trailers()["x-sum"]
      res:send(200, "streamed " .. st.total)
    end)
  end, { stream_threshold = 1000, max_body = 2000 }))
  local base = "http://127.0.0.1:" .. l:port()
  -- curl -T - sends a body of unknown length, chunked.
  local body = T.sh(mgr, "head -c 5000 /dev/zero | tr '\\0' z | curl -sS -m 10 -T - " .. T.q(base .. "/up"))
  T.eq(body, "streamed 5000", "curl -T - is streamed through on_body")
  st = { chunks = 0, total = 0, ended = false }
  local out = py([[
# 1500 bytes in small chunks: over stream_threshold, streamed (max_body does not apply).
s = conn()
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          + b"a\r\n0123456789\r\n" * 150 + b"0\r\nX-Sum: 1500\r\n\r\n")
out("streamed", read_resp(s).split(b"\r\n\r\n", 1)[1].decode())
# 900 bytes: under it, buffered.
s = conn()
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          + b"384\r\n" + b"b" * 900 + b"\r\n0\r\n\r\n")
out("buffered", read_resp(s).split(b"\r\n\r\n", 1)[1].decode())
]], l:port())
  T.eq(out, "streamed streamed 1500\nbuffered buffered 900\n")
  T.ok(st.ended and st.chunks >= 1, "on_body saw the body end (" .. st.chunks .. " chunks)")
  T.eq(st.trailer, "1500", "the streamed body's trailer, at on_end")
  -- Buffered: max_body counts decoded bytes (the wire has more).
  local small = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
    return 200, "got " .. #req:body()
  end, { max_body = 1000 }))
  out = py([[
s = conn()
# 900 body bytes in 1-byte chunks: 5400 bytes on the wire, within max_body.
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nc\r\n" * 900 + b"0\r\n\r\n")
out("decoded", read_resp(s).split(b"\r\n\r\n", 1)[1].decode())
r = raw(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nc\r\n" * 1100 + b"0\r\n\r\n")
out("over", status(r))
]], small:port())
  T.eq(out, "decoded got 900\nover 413\n")
  l:close()
  small:close()
end)

T.test("204 and 304 go out without Content-Length or body; keep-alive goes on", function()
  local out = py([[
data = send_read(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                 lambda r: r.count(b"HTTP/1.1 ") >= 3 and r.endswith(b"hello\n"), 2)
parts = data.split(b"HTTP/1.1 ")[1:]
for p in parts:
    head = p.split(b"\r\n\r\n")[0].lower()
    out(p[:3].decode(), b"content-length" in head, b"etag" in head)
]])
  T.eq(out, "204 False False\n304 False True\n200 True False\n")
end)

T.test("a handler's 204 with a body gets 500, and res:send(103) raises: no reply is lost", function()
  local out = py([[
data = send_read(b"GET /204-with-body HTTP/1.1\r\nHost: x\r\n\r\n", lambda r: b"\r\n\r\n" in r, 2)
out(data.split(b"\r\n")[0].decode())
data = send_read(b"GET /103-final HTTP/1.1\r\nHost: x\r\n\r\n", lambda r: r.endswith(b"after\n"))
out(data.split(b"\r\n")[0].decode())
]])
  T.eq(out, "HTTP/1.1 500 Internal Server Error\nHTTP/1.1 200 OK\n")
  T.match(seen_send_error, "informational", "res:send(103) raised")
end)

T.run()
