-- Hostile WebSocket clients (issue 17): the frame sequence that once hung
-- the server, writes after a close, ping floods, unfinished messages, peers
-- that stop answering or stop reading, and what the server queues for them.
-- Each attack runs from python3 on loopback while this process serves; a
-- good client is answered within 100 ms meanwhile, and what the server holds
-- per attacking connection stays under the configured caps.
local T = require("testlib")
local P = require("testpy")

local mgr, logs = T.logging_manager({ log_level = "info" })

local function serve(opts)
  opts.path = opts.path or "/ws"
  opts.http = opts.http or function(req)
    if req.path == "/hello" then
      return 200, "hello\n"
    end
    return 404, "no\n"
  end
  return assert(mgr:ws_listen("http://127.0.0.1:0", opts))
end

local function py(code, port, timeout_ms)
  return P.check(mgr, P.HTTP .. P.WS .. code, port, timeout_ms)
end

-- good() repeated a few times: the worst latency of a plain GET meanwhile.
local rss_kib = T.rss_kib

local echo = serve({
  max_message = 1024 * 1024,
  on_message = function(ws, data, is_binary)
    ws:send(data, is_binary and "binary" or "text")
  end,
})

-- Checks what an attack script printed (P.kv): the attacker closed with
-- code (what), good clients served meanwhile (worst), and another
-- WebSocket still echoing (echo); returns the parsed lines.
local function check_attack(out, code, what)
  local r = P.kv(out)
  T.eq(r.code, code, what)
  P.check_worst(r.worst)
  T.eq(r.echo, "True", "other WebSockets still work")
  return r
end

T.test("A: a fragment, a close, then a 70000-byte ping: closed cleanly, the server goes on", function()
  local out = py(P.WORST_GOOD .. [[
s = ws_open()
s.sendall(frame(b"x" * 65535, fin=False) + frame(struct.pack("!H", 1000), op=8)
          + frame(b"p" * 70000, op=9))
out("code", close_code(s))
out("worst", worst_good())
# The same frames once more, the ping first: a control frame over 125 bytes.
s = ws_open()
s.sendall(frame(b"x" * 65535, fin=False) + frame(b"p" * 70000, op=9))
out("code2", close_code(s))
other = ws_open()
out("echo", echo_ok(other))
]], echo:port())
  local r = check_attack(out, "1000", "the close is answered with its own code; what follows it is ignored")
  T.eq(r.code2, "1002", "a 70000-byte ping is a protocol error")
end)

T.test("B: after the client's close the server sends one close frame and nothing else", function()
  local out = py([[
s = ws_open()
s.sendall(frame(struct.pack("!H", 1000) + b"bye", op=8))
data = b""
s.settimeout(3)
while True:
    try:
        d = s.recv(4096)
    except socket.timeout:
        break
    if not d:
        break
    data += d
out("bytes", data.hex())
]], echo:port())
  T.eq(out, "bytes 880203e8\n", "exactly one close frame with the code (no HTTP 400 after it)")
end)

T.test("D: a ping flood is refused (1008) without slowing anyone down", function()
  local out = py(P.WORST_GOOD .. [[
s = ws_open()
other = ws_open()
burst = frame(b"", op=9) * 20000
s.sendall(burst)
out("worst", worst_good())
out("code", close_code(s))
out("echo", echo_ok(other))
]], echo:port())
  check_attack(out, "1008", "a flood of control frames closes with 1008")
  T.ok(T.find_log(logs, "too many control frames"), "the reason is logged")
end)

T.test("pings within the rate get one pong each, in order", function()
  local out = py([[
s = ws_open()
for i in range(50):
    s.sendall(frame(b"p%d" % i, op=9))
got = []
for i in range(50):
    op, data = read_frame(s)
    got.append((op, data))
out("pongs", all(op == 10 for op, _ in got), got[-1][1].decode())
]], echo:port())
  T.eq(out, "pongs True p49\n")
end)

T.test("an unfinished fragmented message is closed (1008) after message_timeout", function()
  local l = serve({ message_timeout = 400, on_message = function() end })
  local out = py([[
s = ws_open()
s.sendall(frame(b"part", fin=False))
t0 = time.time()
code = close_code(s)
out("code", code, 0.3 < time.time() - t0 < 2)
]], l:port())
  T.eq(out, "code 1008 True\n")
  l:close()
end)

T.test("ws_idle_timeout: a quiet peer is pinged, then closed with 1001; an answering one stays", function()
  local l = serve({ ws_idle_timeout = 600, on_message = function() end })
  local out = py([[
s = ws_open()
t0 = time.time()
op, data = read_frame(s)   # the server's ping, after half the idle time
out("ping", op, round(time.time() - t0, 1) >= 0.2)
code = close_code(s)        # no pong: closed after the idle time
out("closed", code, 0.4 < time.time() - t0 < 2)
# A peer that answers pings stays open past the idle time.
s = ws_open()
end_at = time.time() + 1.5
alive = True
while time.time() < end_at:
    s.settimeout(max(0.01, end_at - time.time()))
    try:
        op, data = read_frame(s)
    except socket.timeout:
        continue
    except EOFError:
        alive = False
        break
    if op == 9:
        s.sendall(frame(data, op=10))
    elif op == 8:
        alive = False
        break
out("answering", alive)
]], l:port())
  local r = P.kv(out)
  T.eq(r.ping, "9 True", "a ping after half the idle time")
  T.eq(r.closed, "1001 True", "closed with 1001 after the idle time")
  T.eq(r.answering, "True", "a peer that answers pings is kept")
  l:close()
end)

T.test("a flooder that never reads: its echoes stop at max_send_queue, reading stops too", function()
  local cap = 256 * 1024
  local server_ws
  local l = serve({
    max_send_queue = cap,
    on_open = function(ws) server_ws = ws end,
    on_message = function(ws, data) ws:send(data, "binary") end,
  })
  local before = rss_kib()
  local job = P.spawn(P.HTTP .. P.WS .. P.WORST_GOOD .. [[
s = ws_open()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
msg = frame(b"f" * 16000, op=2)
sent = 0
s.settimeout(0.2)
end_at = time.time() + 2
while time.time() < end_at and sent < 4000:
    try:
        s.send(msg)
        sent += 1
    except socket.timeout:
        break
out("worst", worst_good())
time.sleep(0.3)
]], l:port())
  local peak = 0
  while not T.read_file(job.base .. ".rc") do
    mgr:poll(5)
    if server_ws and not server_ws.closed then
      peak = math.max(peak, server_ws:send_queued())
    end
  end
  local out = T.wait(job, mgr)
  local r = P.kv(out)
  P.check_worst(r.worst)
  T.ok(peak > 0, "echoes were queued")
  T.ok(peak <= cap + 64 * 1024, "queue bounded by the cap (peak " .. peak .. " bytes)")
  T.ok(rss_kib() - before < 16 * 1024, "memory bounded (" .. (rss_kib() - before) .. " KiB more)")
  l:close()
end)

T.test("ws:pause() holds a flooding peer without spinning; resume() lets it through", function()
  if jit.os == "Windows" then
    T.skip("CPU bounds: under Wine a process's CPU time includes Wine's own work per poll"
           .. " (the polls stay few: no busy loop)")
  end
  local server_ws, count = nil, 0
  local l = serve({
    on_open = function(ws)
      server_ws = ws
      ws:pause()
    end,
    on_message = function() count = count + 1 end,
  })
  local job = P.spawn(P.HTTP .. P.WS .. [[
s = ws_open()
s.settimeout(0.5)
msg = frame(b"m" * 1000)
try:
    for i in range(2000):
        s.send(msg)
except socket.timeout:
    pass
time.sleep(4)
]], l:port())
  T.ok(T.poll_until(mgr, function() return server_ws ~= nil end, 5000), "upgraded")
  T.sleep_polling(mgr, 300)
  local t0 = T.cpu_ticks()
  T.sleep_polling(mgr, 1000)
  local used = T.cpu_ticks() - t0
  T.eq(count, 0, "no message while paused")
  T.ok(used < 15, "paused: no busy loop (" .. used .. " ticks of CPU in 1 s)")
  server_ws:resume()
  T.ok(T.poll_until(mgr, function() return count > 100 end, 5000), "messages flow after resume: " .. count)
  T.wait(job, mgr)
  l:close()
end)

T.test("broadcast skips (or closes) a consumer whose queue is full; the others get it", function()
  local cap = 64 * 1024
  local conns = {}
  local l = serve({ max_send_queue = cap, on_open = function(ws) conns[#conns + 1] = ws end })
  local job = P.spawn(P.HTTP .. P.WS .. [[
slow = ws_open()   # never reads
fast = ws_open()
fast.sendall(frame(b"fast"))
n = 0
fast.settimeout(5)
try:
    while True:
        op, data = read_frame(fast)
        if data == b"end":
            break
        n += 1
except socket.timeout:
    pass
out("fast", n)
slow.close()
]], l:port())
  T.ok(T.poll_until(mgr, function() return #conns == 2 end, 5000), "both connected")
  -- The fast one says so (its first message); the other never reads.
  local fast
  for _, ws in ipairs(conns) do
    ws.on_message = function(w) fast = w end
  end
  T.ok(T.poll_until(mgr, function() return fast ~= nil end, 5000), "the fast consumer spoke")
  local slow_ws = conns[1] == fast and conns[2] or conns[1]
  local slow_closed
  slow_ws.on_close = function(_, code) slow_closed = code end
  local chunk = ("b"):rep(16 * 1024)
  local expected_fast, skipped = 0, 0
  for _ = 1, 3000 do
    if fast:send_queued() < cap then
      expected_fast = expected_fast + 1
    end
    local _, slow = l:broadcast(chunk, "binary")
    skipped = skipped + slow
    mgr:poll(1)
    if skipped >= 3 then
      break
    end
  end
  T.ok(skipped >= 3, "the slow consumer was skipped (" .. skipped .. " times)")
  T.ok(slow_ws:send_queued() >= cap, "the slow consumer's queue is at the cap")
  T.ok(T.poll_until(mgr, function() return fast:send_queued() == 0 end, 5000), "the fast one caught up")
  local n, slow = l:broadcast(chunk, "binary", nil, { slow = "close" })
  T.ok(n == 1 and slow == 1, "slow = close: closes the slow one (" .. n .. " sent, " .. slow .. " slow)")
  T.ok(slow_ws.closing and slow_ws.local_close_code == 1008, "the slow one is closing with 1008")
  expected_fast = expected_fast + 1
  l:broadcast("end", "binary")
  local out = T.wait(job, mgr, 30000)
  T.eq(tonumber(P.kv(out).fast), expected_fast, "the fast consumer got every broadcast queued for it")
  T.ok(T.poll_until(mgr, function() return slow_closed ~= nil end, 5000), "the slow one is gone")
  l:close()
end)

T.run()
