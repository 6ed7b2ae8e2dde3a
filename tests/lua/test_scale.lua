-- Thousands of idle connections (issue 11): with them open, a request on a
-- fresh connection and one on an idle connection are answered at once; an
-- idle keep-alive connection holds at most 1 KB of the server's memory
-- (RSS), an idle WebSocket at most 2 KB with its Lua objects, and neither
-- more than 64 bytes of Lua heap (no object of its own). The server is
-- this process; a Python peer holds the connections (bench/scale.sh
-- measures the same at 15,000 with throughput).
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")
local core = require("mongoose.core")

local N = 4000
local mgr = assert(mongoose.new_manager({ log_level = "error" }))
if core.fd_limit() < N + 300 then
  T.skip("needs " .. (N + 300) .. " descriptors; the hard limit is " .. core.fd_limit())
end

local l = assert(mgr:ws_listen("http://127.0.0.1:0", {
  path = "/ws",
  on_message = function(ws, data)
    ws:send(data)
  end,
  http = function()
    return 200, "hello\n"
  end,
}))
local PORT = l:port()

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then
      return tonumber(kb)
    end
  end
end

-- The peer: opens n connections of kind ("http": one GET each, the reply
-- read; "ws": the handshake), prints "ready", waits for the go file, then
-- asks on a fresh connection and on the first idle one and prints what it
-- got and how long it took.
local HOLDER = P.HTTP .. [[
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n, kind, go = int(sys.argv[2]), sys.argv[3], sys.argv[4]
held = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind(("127.0.0.%d" % (2 + i % 200), 0))
    s.connect(("127.0.0.1", PORT))
    if kind == "http":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_resp(s)
        assert b" 200 " in r.split(b"\r\n")[0], r
    else:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        d = b""
        while b"\r\n\r\n" not in d:
            d += s.recv(4096)
        assert d.startswith(b"HTTP/1.1 101"), d
    held.append(s)
out("ready", len(held))
while not os.path.exists(go):
    time.sleep(0.02)
t0 = time.time()
ok, _ = good()
out("fresh", ok, round(time.time() - t0, 3) < 1)
s = held[0]
t0 = time.time()
if kind == "http":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_resp(s)
    out("idle", b" 200 " in r.split(b"\r\n")[0], round(time.time() - t0, 3) < 1)
else:
    s.sendall(bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2]))
    d = s.recv(16)
    out("idle", d == b"\x81\x02hi", round(time.time() - t0, 3) < 1)
for s in held:
    s.close()
]]

-- Warm-up: the pools and the JIT settle before the baseline.
do
  local job = P.spawn(HOLDER, PORT .. " 200 http "
                      .. T.q(T.tmpdir() .. "/go-warmup"))
  T.ok(T.poll_until(mgr, function()
    return (T.read_file(job.base .. ".out") or ""):find("ready") ~= nil
  end, 20000), "warm-up connections opened")
  T.write_file(T.tmpdir() .. "/go-warmup", "")
  T.wait(job, mgr, 20000)
  T.poll_until(mgr, function() return mgr:connection_count() <= 1 end, 5000)
end

local function hold(kind, bound)
  T.sleep_polling(mgr, 500)
  collectgarbage()
  collectgarbage()
  local before, lua_before = rss_kb(), collectgarbage("count")
  local go = T.tmpdir() .. "/go-" .. kind
  local job = P.spawn(HOLDER, PORT .. " " .. N .. " "
                      .. kind .. " " .. T.q(go))
  T.ok(T.poll_until(mgr, function()
    return (T.read_file(job.base .. ".out") or ""):find("ready") ~= nil
  end, 60000), kind .. ": " .. N .. " connections opened")
  T.sleep_polling(mgr, 600) -- idle connections are parked after 250 ms
  collectgarbage()
  collectgarbage()
  local per = (rss_kb() - before) * 1024 / N
  local lua_per = (collectgarbage("count") - lua_before) * 1024 / N
  T.ok(mgr:connection_count() >= N, kind .. ": all of them open at the server")
  T.write_file(go, "")
  local out, rc, err = T.wait(job, mgr, 30000)
  T.eq(rc, 0, kind .. " peer's exit status; stderr: " .. err)
  T.eq(out, "ready " .. N .. "\nfresh True True\nidle True True\n", kind .. ": served at once")
  io.write(string.format("       %s: %.0f bytes of RSS, %.0f of Lua heap per idle connection\n",
                          kind, per, lua_per))
  -- An idle connection has no Lua object of its own (a WebSocket sleeps):
  -- its entries in the manager's tables only.
  T.ok(lua_per <= 64, string.format("%s: %.0f bytes of Lua heap per idle connection (bound 64)",
                                    kind, lua_per))
  if T.sanitized then
    io.write("       (sanitizer build: malloc's redzones and quarantine; the bound is not checked)\n")
  else
    T.ok(per <= bound, string.format("%s: %.0f bytes of RSS per idle connection (bound %d)", kind, per, bound))
  end
  T.poll_until(mgr, function() return mgr:connection_count() <= 1 end, 10000)
end

T.test(N .. " idle keep-alive connections: served at once, at most 1 KB each", function()
  hold("http", 1024)
end)

T.test(N .. " idle WebSockets: served at once, at most 2 KB each with their Lua objects", function()
  hold("ws", 2048)
end)

T.run()
