-- HTTP/1.1 edges the C glue handles before Lua sees anything (RFC 9110
-- and 9112), against real peers on loopback: Expect: 100-continue and 417,
-- broken chunk framing (400) and valid chunks split at every awkward
-- place.
local T = require("testlib")
local P = require("testpy")

-- Runs python code (after testpy's HTTP prelude) with port as argv[1]
-- while mgr polls; returns stdout and fails on a non-zero exit.
local function py(mgr, port, code, timeout_ms)
  return P.check(mgr, P.HTTP .. code, port, timeout_ms)
end

local new_mgr, mgr_test = T.managers({ log_level = "error" })

local function echo_length(req)
  return 200, "got " .. #req:body()
end

---------------------------------------------------------------------------
-- Expect: 100-continue
---------------------------------------------------------------------------

mgr_test("Expect: 100-continue gets '100 Continue' before the body is sent", function(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", echo_length))
  local out = py(mgr, l:port(), [[
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
interim = s.recv(100)
print(repr(interim))
s.sendall(b"hello")
reply = read_reply(s, lambda r: r.endswith(b"got 5"))
print(status_line(reply), reply.endswith(b"got 5"))
]])
  T.eq(out, "b'HTTP/1.1 100 Continue\\r\\n\\r\\n'\nHTTP/1.1 200 OK True\n")
end)

-- Uploads data (kept in the file T.tmpdir()/<name>) to listener l with
-- curl -v; checks curl's exit; returns its stdout and stderr (the trace).
local function curl_upload(mgr, l, name, data)
  local body = T.tmpdir() .. "/" .. name
  T.write_file(body, data)
  local out, rc, err = T.run_client(mgr, "curl -sS -v -m 10 --data-binary @" .. T.q(body)
                                    .. " http://127.0.0.1:" .. l:port() .. "/", 15000)
  T.eq(rc, 0, "curl exit")
  return out, err
end

mgr_test("curl's 2 MB upload (which sends Expect: 100-continue) sees 100 Continue", function(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", echo_length))
  local out, err = curl_upload(mgr, l, "two_mb", ("x"):rep(2 * 1024 * 1024))
  T.eq(out, "got " .. 2 * 1024 * 1024)
  T.ok(err:find("Expect: 100-continue", 1, true), "curl asked")
  T.ok(err:find("HTTP/1.1 100 Continue", 1, true), "and was answered")
end)

mgr_test("a streamed upload with Expect: 100-continue is asked for its body", function(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    local n = 0
    req:on_body(function(chunk) n = n + #chunk end, function() res:send(200, "streamed " .. n) end)
  end, { stream_threshold = 1000 }))
  local out, err = curl_upload(mgr, l, "three_mb", ("y"):rep(3 * 1024 * 1024))
  T.eq(out, "streamed " .. 3 * 1024 * 1024)
  T.ok(err:find("HTTP/1.1 100 Continue", 1, true), "100 Continue sent")
end)

mgr_test("an Expect other than 100-continue is refused with 417; HTTP/1.0 ignores Expect", function(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", echo_length))
  local out = py(mgr, l:port(), [[
def exchange(data):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(data)
    return read_reply(s)
r = exchange(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\nhi")
print(status_line(r))
r = exchange(b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
print(status_line(r), b"100 Continue" in r, r.endswith(b"got 2"))
]])
  T.eq(out, "HTTP/1.1 417 Expectation Failed\nHTTP/1.1 200 OK False True\n")
end)

---------------------------------------------------------------------------
-- Chunked request bodies
---------------------------------------------------------------------------

mgr_test("broken chunk framing gets 400 (not a silent close); the server goes on", function(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", echo_length))
  local out = py(mgr, l:port(), [[
HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
CASES = [
    ("negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("overflow_2_64", b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("all_f", b"ffffffffffffffff\r\nhello\r\n"),
    ("over_31_bits", b"80000000\r\nhello\r\n"),
    ("not_hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("no_crlf_after_size", b"5\nhello\r\n0\r\n\r\n"),
    ("data_too_long", b"3\r\nhello\r\n0\r\n\r\n"),
]
for name, body in CASES:
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(HEAD + body)
    print(name, status_line(read_reply(s)) or "closed")
]])
  local want = {}
  for _, name in ipairs({ "negative", "overflow_2_64", "all_f", "over_31_bits", "not_hex",
                          "no_crlf_after_size", "data_too_long" }) do
    want[#want + 1] = name .. " HTTP/1.1 400 Bad Request\n"
  end
  T.eq(out, table.concat(want))
  local body = T.run_client(mgr, "curl -sS -m 5 -H 'Transfer-Encoding: chunked' --data-binary abc http://127.0.0.1:"
                            .. l:port() .. "/")
  T.eq(body, "got 3", "a good chunked request after them")
end)

T.test("valid chunks split at every awkward place still arrive whole", function()
  -- Mongoose 7.23 alone drops the connection when a read ends right after
  -- a size line's digits ("100" or "100\r"): the glue holds those back.
  local mgr = new_mgr()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req)
    return 200, "body " .. req:body()
  end))
  local out = py(mgr, l:port(), [[
data = bytes(97 + i % 26 for i in range(256))
body = b"5\r\nhello\r\n100\r\n" + data + b"\r\n0\r\n\r\n"
head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
msg = head + body
h = len(head)
# Cut inside a size line, right after its digits, between CR and LF,
# inside the data, before the final CRLF: each piece is its own read.
cuts = [h + 1, h + 2, h + 4, h + 10, h + 13, h + 14, h + 20, len(msg) - 3, len(msg) - 1]
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
prev = 0
for cut in cuts + [len(msg)]:
    s.sendall(msg[prev:cut])
    prev = cut
    time.sleep(0.05)
want = b"body hello" + data
reply = read_reply(s, lambda r: r.endswith(want))
print(status_line(reply), reply.endswith(want))
]])
  T.eq(out, "HTTP/1.1 200 OK True\n")
  mgr:close()
end)

T.run()
