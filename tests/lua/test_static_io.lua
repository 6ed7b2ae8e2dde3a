-- How the static file server sends bodies: sendfile(2) on plain HTTP with
-- backpressure (a reader that does not read costs no CPU and no polls),
-- send_timeout for a stalled download, many downloads at once, big files
-- and ranges intact, pipelined requests after a file, a file truncated
-- while it is sent, and descriptors: closed once sent without the
-- open-file cache, bounded by it with it. Each test is bounded to seconds.
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local mgr = assert(mongoose.new_manager())
T.on_exit(function()
  mgr:close()
end)

local www = T.tmpdir() .. "/www"
os.execute("mkdir -p " .. T.q(www))
local MB = 1024 * 1024
-- Files from python (fast, and their digests come from the same place).
local made = T.run_client(nil, T.q(T.python) .. " -c " .. T.q([[
import hashlib, os, sys
root = sys.argv[1]
def make(name, size, seed):
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    data = (block * (size // len(block) + 1))[:size]
    data = bytes((b + i) & 255 for i, b in enumerate(data[:65536])) + data[65536:]
    open(os.path.join(root, name), "wb").write(data)
    print(name, hashlib.sha256(data).hexdigest())
make("big.bin", 50 * 1024 * 1024, "big")
make("mid.bin", 4 * 1024 * 1024, "mid")
make("trunc.bin", 20 * 1024 * 1024, "trunc")
for i in range(10):
    make("f%d.bin" % i, 100000 + i, "f%d" % i)
open(os.path.join(root, "a.txt"), "w").write("0123456789abcdef")
]]) .. " " .. T.q(www), 60000)
local digests = {}
for name, digest in made:gmatch("(%S+) (%x+)\n") do
  digests[name] = digest
end
assert(digests["big.bin"] and digests["f9.bin"], "the files were made: " .. made)

local served = {}  -- responses of the main listener, in order
local listener = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
  served[#served + 1] = res
  return res:serve_dir(www)
end))
local PORT = listener:port()

local function py(code, port, timeout_ms)
  return P.check(mgr, P.HTTP .. code, port or PORT, timeout_ms)
end

-- The process's own descriptor count (from /proc/self, through the FFI).
local ffi = require("ffi")
ffi.cdef [[
typedef struct DIR DIR;
DIR *opendir(const char *name);
void *readdir(DIR *d);
int closedir(DIR *d);
]]
local function fd_count()
  local d = ffi.C.opendir("/proc/self/fd")
  local n = 0
  while ffi.C.readdir(d) ~= nil do
    n = n + 1
  end
  ffi.C.closedir(d)
  return n - 3 -- ".", ".." and the directory's own descriptor
end

T.test("a reader that does not read a 50 MB file costs no CPU and no polls; it resumes intact", function()
  if jit.os == "Windows" then
    T.skip("CPU bounds: under Wine a process's CPU time includes Wine's own work per poll"
           .. " (the polls stay few: no busy loop)")
  end
  local n0 = #served
  local job = P.spawn(P.HTTP .. [[
import hashlib
s = conn(timeout=20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(3)              # not reading: the server's socket fills up
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, _, body = buf.partition(b"\r\n\r\n")
h = hashlib.sha256(body)
n = len(body)
while n < 50 * 1024 * 1024:
    d = s.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
print("got", n, h.hexdigest())
]], PORT)
  T.ok(T.poll_until(mgr, function() return #served > n0 end, 5000), "the request arrived")
  local res = served[#served]
  T.sleep_polling(mgr, 300) -- the kernel's buffers fill
  local queued = res:send_queued()
  T.ok(queued > 30 * MB, "the unsent part of the file counts as queued (" .. queued .. " bytes)")
  local t0, polls0 = T.cpu_ticks(), mgr.poll_seq
  T.sleep_polling(mgr, 1000)
  local ticks, polls = T.cpu_ticks() - t0, mgr.poll_seq - polls0
  print(string.format("  (not reading: %d ticks, %d polls in 1 s)", ticks, polls))
  T.ok(ticks <= 3, "CPU while the client does not read: " .. ticks .. " ticks in 1 s")
  T.ok(polls <= 20, "polls while the client does not read: " .. polls .. " in 1 s")
  local out = T.wait(job, mgr, 30000)
  T.eq(out, "got " .. 50 * MB .. " " .. digests["big.bin"] .. "\n", "the whole file once the client reads")
end)

-- Python: stalled(path, pause, got) asks for path with a small receive
-- buffer, reads nothing for pause seconds, then reads until the server
-- closes, counting the bytes in got[0] (kept when a read raises).
local STALLED = [[
def stalled(path, pause, got):
    s = conn(timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(pause)
    while True:
        d = s.recv(1 << 20)
        if not d:
            return
        got[0] += len(d)
]]

T.test("send_timeout closes a download the client stopped taking", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    return res:serve_dir(www)
  end, { send_timeout = 400 }))
  local before = mgr:connection_count()
  local job = P.spawn(P.HTTP .. STALLED .. [[
got = [0]
try:
    stalled(b"/big.bin", 2.5, got)
except (ConnectionResetError, socket.timeout) as e:
    pass
print("short" if got[0] < 50 * 1024 * 1024 else "whole", got[0] > 0)
]], l:port())
  T.ok(T.poll_until(mgr, function() return mgr:connection_count() > before end, 5000), "connected")
  local t0 = mongoose.core.millis()
  T.ok(T.poll_until(mgr, function() return mgr:connection_count() == before end, 4000),
       "the stalled connection was closed")
  local took = mongoose.core.millis() - t0
  T.ok(took < 2000, "within send_timeout and a little (" .. took .. " ms)")
  T.eq(T.wait(job, mgr, 20000), "short True\n", "the client got part of it, then the close")
  l:close()
end)

T.test("32 downloads at once, whole files and ranges, all intact", function()
  local out = py([[
import hashlib, threading
results = []
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    if i % 4 == 3:
        c.request("GET", "/mid.bin", headers={"Range": "bytes=1000000-2999999"})
    else:
        c.request("GET", "/mid.bin")
    r = c.getresponse()
    body = r.read()
    results.append((r.status, len(body), hashlib.sha256(body).hexdigest()))
ts = [threading.Thread(target=one, args=(i,)) for i in range(32)]
for t in ts: t.start()
for t in ts: t.join()
full = [x for x in results if x[0] == 200]
part = [x for x in results if x[0] == 206]
print("full", len(full), len(set(x[2] for x in full)), full[0][1])
print("part", len(part), len(set(x[2] for x in part)), part[0][1])
print("digest", full[0][2])
]], nil, 60000)
  T.eq(out, "full 24 1 " .. 4 * MB .. "\npart 8 1 2000000\ndigest " .. digests["mid.bin"] .. "\n")
end)

T.test("requests pipelined after a file body, Connection: close and HTTP/1.0 after a big one", function()
  local out = py([[
import hashlib
s = conn(timeout=20)
s.sendall(b"GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
f = s.makefile("rb")
def response():
    status = f.readline().split()[1]
    n = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.lower() == b"content-length":
            n = int(v)
    return status.decode(), n
st, n = response()
print("get", st, hashlib.sha256(f.read(n)).hexdigest())
print("head", *response())
st, n = response()
print("small", st, f.read(n).decode())
for req in (b"GET /mid.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"GET /mid.bin HTTP/1.0\r\n\r\n"):
    data = raw(req, timeout=10)
    print("closed" if b"<TIMEOUT>" not in data else "left open", len(data.partition(b"\r\n\r\n")[2]))
]], nil, 60000)
  T.eq(out, "get 200 " .. digests["mid.bin"] .. "\nhead 200 " .. 4 * MB .. "\nsmall 200 0123456789abcdef\n"
       .. "closed " .. 4 * MB .. "\nclosed " .. 4 * MB .. "\n")
end)

T.test("a file truncated while it is sent: the connection is closed, not left hanging", function()
  local n0 = #served
  local job = P.spawn(P.HTTP .. STALLED .. [[
got = [0]
try:
    stalled(b"/trunc.bin", 1, got)
    print("closed", got[0] < 20 * 1024 * 1024)
except socket.timeout:
    print("hung")
]], PORT)
  T.ok(T.poll_until(mgr, function() return #served > n0 end, 5000), "the request arrived")
  T.sleep_polling(mgr, 300)
  T.write_file(www .. "/trunc.bin", "short now")
  T.eq(T.wait(job, mgr, 20000), "closed True\n")
end)

T.test("descriptors: closed once sent without the cache; bounded by max_entries with it, then dropped", function()
  if jit.os == "Windows" then
    T.skip("counts the process's descriptors in /proc/self/fd")
  end
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function(req, res)
    return res:serve_dir(www)
  end))
  T.ok(mgr:set_file_cache({ max_entries = 0 }), "cache off")
  local fetch_all = [[
import threading
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    c.request("GET", "/f%d.bin" % (i % 10))
    r = c.getresponse()
    assert r.status == 200 and len(r.read()) == 100000 + i % 10
    c.close()
ts = [threading.Thread(target=one, args=(i,)) for i in range(40)]
for t in ts: t.start()
for t in ts: t.join()
print("done")
]]
  local base = fd_count()
  T.eq(py(fetch_all, l:port()), "done\n")
  T.ok(T.poll_until(mgr, function() return fd_count() == base end, 3000),
       "no descriptor left without the cache (" .. fd_count() .. " against " .. base .. ")")
  T.ok(mgr:set_file_cache({ max_entries = 4, valid_ms = 1000, inactive_ms = 300 }), "a small cache")
  T.eq(py(fetch_all, l:port()), "done\n")
  T.ok(T.poll_until(mgr, function() return mgr:connection_count() <= 3 end, 3000), "clients gone")
  local held = fd_count() - base
  T.ok(held >= 1 and held <= 4, "the cache holds at most 4 files (" .. held .. ")")
  T.ok(T.poll_until(mgr, function() return fd_count() == base end, 3000),
       "inactive entries are dropped (" .. fd_count() - base .. " left)")
  T.ok(mgr:set_file_cache({}), "the defaults again")
  l:close()
end)

T.run()
