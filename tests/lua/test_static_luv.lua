-- Static files under mongoose.luv: a body sent with sendfile(2) waits for
-- room through the glue's own epoll set, nested in the one a luv loop
-- watches, so a download arrives whole and a reader that does not read
-- costs the loop nothing. Skipped when luv is missing.
local T = require("testlib")
local L = require("testluv")
local uv, test, new_manager, loop_until, loop_for = L.uv, L.test, L.new_manager, L.loop_until, L.loop_for
local spawn = L.spawn

local www = T.tmpdir() .. "/www"
os.execute("mkdir -p " .. T.q(www))
local made = T.run_client(nil, T.q(T.python) .. " -c " .. T.q([[
import hashlib, sys
data = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(20 * 1024 * 1024 // 32))
open(sys.argv[1] + "/twenty.bin", "wb").write(data)
print(hashlib.sha256(data).hexdigest())
]]) .. " " .. T.q(www))
local digest = made:match("%x+")
assert(digest, "the file was made: " .. made)

local function server(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    return res:serve_dir(www)
  end))
  return l:port()
end

test("a 20 MB file sent with sendfile under luv arrives whole", function()
  local mgr = new_manager()
  local port = server(mgr)
  assert(mgr:attach_luv(uv))
  local code, out
  spawn("sh", { "-c", "curl -s --max-time 20 http://127.0.0.1:" .. port .. "/twenty.bin | sha256sum" },
        function(c, o)
          code, out = c, o
        end)
  loop_until(function() return code ~= nil end, 25000, "curl")
  T.eq(code, 0)
  T.eq(out:match("%x+"), digest)
end)

test("under luv, a reader that does not read costs no CPU; it then gets the whole file", function()
  local mgr = new_manager()
  local port = server(mgr)
  assert(mgr:attach_luv(uv))
  local code, out
  spawn(T.python, { "-c", [[
import hashlib, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b"GET /twenty.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(2)
data = b""
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    data += d
print(hashlib.sha256(data.partition(b"\r\n\r\n")[2]).hexdigest())
]], tostring(port) }, function(c, o)
    code, out = c, o
  end)
  loop_for(500)
  local t0 = T.cpu_ticks()
  loop_for(1000)
  local ticks = T.cpu_ticks() - t0
  T.ok(ticks <= 3, "CPU of the loop while the client does not read: " .. ticks .. " ticks in 1 s")
  loop_until(function() return code ~= nil end, 25000, "the client")
  T.eq(code, 0)
  T.eq(out:match("%x+"), digest, "the whole file")
end)

T.run()
