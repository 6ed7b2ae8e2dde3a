-- The static file server over TLS: bodies are read into the send buffer
-- (64 KiB at a time) and encrypted by Mongoose instead of going out with
-- sendfile(2). A 5 MiB file and a range of it arrive intact, a 304 has no
-- body, and a reader that does not read costs no CPU.
local T = require("testlib")
local TT = require("testtls")
local P = require("testpy")

local www = T.tmpdir() .. "/www"
os.execute("mkdir -p " .. T.q(www))
local made = T.run_client(nil, T.q(T.python) .. " -c " .. T.q([[
import hashlib, os, sys
data = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(5 * 1024 * 1024 // 32))
open(os.path.join(sys.argv[1], "five.bin"), "wb").write(data)
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(data[1000000:3000000]).hexdigest())
]]) .. " " .. T.q(www))
local whole, part = made:match("(%x+) (%x+)")
assert(whole, "the file was made: " .. made)

local served = {}
local mgr, _, port = TT.https_server({ tls = TT.SERVER_TLS }, function(req, res)
  served[#served + 1] = res
  return res:serve_dir(www)
end)
T.on_exit(function()
  mgr:close()
end)
local URL = "https://127.0.0.1:" .. port .. "/five.bin"

local function curl_sha(args)
  local out, rc, err = T.sh(mgr, "curl -sS -m 20 " .. TT.CURL_RETRY .. "--cacert " .. T.q(TT.CA) .. " " .. args
                               .. " " .. T.q(URL) .. " | sha256sum", 30000)
  T.eq(rc, 0, "curl and sha256sum (" .. err .. ")")
  return out:match("%x+")
end

T.test("a 5 MiB file and a range of it arrive intact over TLS", function()
  T.eq(curl_sha(""), whole, "the whole file")
  T.eq(curl_sha("-H 'Range: bytes=1000000-2999999'"), part, "bytes 1000000-2999999")
end)

T.test("over TLS, a 304 for the ETag and HEAD have no body", function()
  local out = TT.curl(mgr, "-sS -i --cacert " .. T.q(TT.CA) .. " " .. T.q(URL) .. " -o /dev/null -D -")
  local etag = out:match("\r\n[Ee][Tt]ag: ([^\r\n]+)")
  T.ok(etag, "an ETag: " .. out)
  local r = T.parse_response(TT.curl(mgr, "-sS -i --cacert " .. T.q(TT.CA) .. " -H " .. T.q("If-None-Match: " .. etag)
                                     .. " " .. T.q(URL)))
  T.eq(r.status, 304)
  T.eq(r.body, "")
  r = T.parse_response(TT.curl(mgr, "-sS -I --cacert " .. T.q(TT.CA) .. " " .. T.q(URL)))
  T.eq(r.status, 200)
  T.eq(r.headers["content-length"], tostring(5 * 1024 * 1024))
end)

T.test("a TLS reader that does not read costs no CPU", function()
  if jit.os == "Windows" then
    T.skip("CPU bounds: under Wine a process's CPU time includes Wine's own work per poll"
           .. " (the polls stay few: no busy loop)")
  end
  local n0 = #served
  local job = P.spawn([[
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"GET /five.bin HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(2.5)
n = 0
t.settimeout(10)
while n < 5 * 1024 * 1024:
    d = t.recv(1 << 20)
    if not d:
        break
    n += len(d)
print("got", n > 5 * 1024 * 1024)
]], port .. " " .. T.q(TT.CA))
  T.ok(T.poll_until(mgr, function() return #served > n0 end, 5000), "the request arrived")
  T.sleep_polling(mgr, 300)
  local t0, polls0 = T.cpu_ticks(), mgr.poll_seq
  T.sleep_polling(mgr, 1000)
  local ticks, polls = T.cpu_ticks() - t0, mgr.poll_seq - polls0
  T.ok(ticks <= 3, "CPU while the client does not read: " .. ticks .. " ticks in 1 s")
  T.ok(polls <= 20, "polls while the client does not read: " .. polls .. " in 1 s")
  T.eq(T.wait(job, mgr, 30000), "got True\n", "the whole response once it reads")
end)

T.run()
