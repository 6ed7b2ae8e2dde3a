-- mongoose.luv: a manager running inside a libuv loop (luv) serves HTTP,
-- TCP and UDP and runs its timers and HTTP client there. Everything is
-- driven by uv.run only: clients are curl processes started with uv.spawn
-- or luv handles in the same process, so the loop keeps running while they
-- talk to the Mongoose servers. Skipped when luv is missing. Attaching,
-- detaching, deadlines and idle CPU: test_luv_attach.lua.
local T = require("testlib")
local L = require("testluv")
local uv, HOST, test, track, new_manager = L.uv, L.HOST, L.test, L.track, L.new_manager
local ms_now, loop_until, curl, luv_client, hello_server = L.ms_now, L.loop_until, L.curl, L.luv_client, L.hello_server

test("attach_luv returns an attachment; curl gets an answer through uv.run", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  local att = assert(mgr:attach_luv(uv))
  T.eq(att.mode, "epoll", "default mode")
  T.eq(mgr.luv, att, "mgr.luv")
  L.expect_hello(base, "/one")
end)

test("HTTP requests are served while a 10 ms luv timer keeps firing on time", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  assert(mgr:attach_luv(uv))

  local ticks, last, max_gap = 0, nil, 0
  local ticker = track(uv.new_timer())
  ticker:start(10, 10, function()
    local now = ms_now()
    if last and now - last > max_gap then
      max_gap = now - last
    end
    last = now
    ticks = ticks + 1
  end)

  local total, parallel = 50, 5
  local started, finished, good = 0, 0, 0
  local bad = {}
  local t0 = ms_now()
  local function start_one()
    if started >= total then
      return
    end
    started = started + 1
    local path = "/req" .. started
    curl({ base .. path }, function(c, out)
      finished = finished + 1
      if c == 0 and out == "hello " .. path .. "\n" then
        good = good + 1
      else
        bad[#bad + 1] = path .. ": exit " .. c .. " " .. out
      end
      start_one()
    end)
  end
  for _ = 1, parallel do
    start_one()
  end
  loop_until(function() return finished == total end, 30000, "50 curl requests")
  local elapsed = ms_now() - t0
  T.eq(good, total, "good answers (" .. table.concat(bad, "; ") .. ")")
  print(string.format("       50 requests in %.0f ms, %d ticks of 10 ms, largest gap %.1f ms",
                      elapsed, ticks, max_gap))
  -- At least half the ticks (a quarter in a sanitizer build, where each
  -- curl's spawn takes the loop longer); no gap of 100 ms either way.
  T.ok(ticks >= elapsed / 10 * (T.sanitized and 0.25 or 0.5), "ticks: " .. ticks .. " in " .. elapsed .. " ms")
  T.ok(max_gap < 100, "largest gap between ticks: " .. max_gap .. " ms")
end)

test("a luv TCP client talks HTTP to the Mongoose server in the same process", function()
  local mgr = new_manager()
  local server = hello_server(mgr)
  assert(mgr:attach_luv(uv))
  local st = luv_client(server:port(), "GET /luv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  loop_until(function() return st.eof end, 5000, "response and EOF")
  T.eq(st.err, nil, "error")
  T.match(st.data, "^HTTP/1%.1 200 OK\r\n")
  T.match(st.data, "\r\n\r\nhello /luv\n$")
end)

-- A test: count requests (GET /<prefix>N) one after another on one luv
-- connection to hello_server, each sent pause_ms after the answer to the
-- one before (at once when 0); every answer within 100 ms, the connection
-- kept open.
local function keepalive_test(name, prefix, count, pause_ms)
  test(name, function()
    local mgr = new_manager()
    local server = hello_server(mgr)
    assert(mgr:attach_luv(uv))
    local answers, sent_at, worst = 0, 0, 0
    local pause = pause_ms > 0 and track(uv.new_timer())
    local function send_next(st)
      sent_at = ms_now()
      st.tcp:write("GET /" .. prefix .. answers + 1 .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    end
    local st
    st = luv_client(server:port(), nil, function(s, _)
      local _, n = s.data:gsub("hello /" .. prefix .. "%d+\n", "")
      if n > answers then
        answers = n
        worst = math.max(worst, ms_now() - sent_at)
        if answers < count and pause then
          pause:start(pause_ms, 0, function() send_next(s) end)
        elseif answers < count then
          send_next(s)
        end
      end
    end)
    loop_until(function() return st.connected ~= nil end, 5000, "connected")
    send_next(st)
    loop_until(function() return answers == count end, 10000, count .. " answers")
    T.ok(worst < 100, "slowest answer: " .. worst .. " ms")
    T.eq(st.eof, false, "connection still open")
  end)
end

keepalive_test("keep-alive: requests on one luv connection, each answered at once", "k", 20, 0)
keepalive_test("keep-alive: a luv connection idle past parking (400 ms between requests) is answered at once",
               "p", 3, 400)

test("large response (2 MiB) and large request body (1 MiB) through the luv loop", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  assert(mgr:attach_luv(uv))
  local big_code, big_body, post_code, post_body
  curl({ base .. "/big" }, function(c, out)
    big_code, big_body = c, out
  end)
  local file = T.tmpdir() .. "/luv-upload.bin"
  T.write_file(file, string.rep("x", 1048576))
  curl({ "--data-binary", "@" .. file, base .. "/echo" }, function(c, out)
    post_code, post_body = c, out
  end)
  loop_until(function() return big_code ~= nil and post_code ~= nil end, 15000, "both curls")
  T.eq(big_code, 0, "curl /big exit")
  T.eq(#big_body, 2097152, "size of /big")
  T.eq(post_code, 0, "curl POST exit")
  T.eq(post_body, "got 1048576 bytes\n")
end)

test("Mongoose TCP echo server with a luv TCP client", function()
  local mgr = new_manager()
  local echo = assert(mgr:tcp_listen("tcp://" .. HOST .. ":0", {
    on_data = function(conn, view)
      conn:send(view:string())
    end,
  }))
  assert(mgr:attach_luv(uv))
  local rounds, sent_at, worst = 0, 0, 0
  local expect = ""
  local function send(st)
    rounds = rounds + 1
    local line = "line " .. rounds .. "\n"
    expect = expect .. line
    sent_at = ms_now()
    st.tcp:write(line)
  end
  local st
  st = luv_client(echo:port(), nil, function(s, _)
    if s.data == expect then
      worst = math.max(worst, ms_now() - sent_at)
      if rounds < 50 then
        send(s)
      end
    end
  end)
  loop_until(function() return st.connected ~= nil end, 5000, "connected")
  send(st)
  loop_until(function() return rounds == 50 and st.data == expect end, 10000, "50 echoes")
  T.ok(worst < 100, "slowest echo: " .. worst .. " ms")
  T.eq(echo:connection_count(), 1, "connections on the echo listener")
  -- The client closes; Mongoose sees it and closes its side.
  st.tcp:close()
  loop_until(function() return echo:connection_count() == 0 end, 5000, "server side closed")
end)

test("replies deferred to luv timers are delivered promptly", function()
  local mgr = new_manager()
  local replied = {}  -- path -> ms when res:send ran
  local server = assert(mgr:http_listen("http://" .. HOST .. ":0", function(req, res)
    local delay = tonumber(req.path:match("^/later/(%d+)$"))
    if not delay then
      return 404, "no\n"
    end
    local t = track(uv.new_timer())
    t:start(delay, 0, function()
      t:close()
      replied[req.path] = ms_now()
      res:send(200, "late " .. delay .. "\n")
    end)
  end))
  assert(mgr:attach_luv(uv))
  local clients = {}
  for i, delay in ipairs({ 20, 50, 80, 150, 300 }) do
    clients[i] = { path = "/later/" .. delay, delay = delay }
    clients[i].st = luv_client(server:port(), "GET /later/" .. delay
                               .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  end
  loop_until(function()
    for _, c in ipairs(clients) do
      if not c.st.eof then
        return false
      end
    end
    return true
  end, 10000, "all deferred replies")
  local worst = 0
  for _, c in ipairs(clients) do
    T.match(c.st.data, "^HTTP/1%.1 200", c.path)
    T.match(c.st.data, "late " .. c.delay .. "\n$", c.path)
    local lag = c.st.times[1] - replied[c.path]
    T.ok(lag >= 0 and lag < 100, c.path .. ": reply arrived " .. lag .. " ms after res:send")
    worst = math.max(worst, lag)
  end
  print(string.format("       slowest deferred reply: %.2f ms from res:send to the client", worst))
end)

test("a reply deferred to a luv timer reaches an idle loop (no other traffic or timers)", function()
  local mgr = new_manager()
  local sent_at
  local server = assert(mgr:http_listen("http://" .. HOST .. ":0", function(req, res)
    local t = track(uv.new_timer())
    t:start(200, 0, function()
      t:close()
      sent_at = ms_now()
      res:send(200, "idle reply\n")
    end)
  end))
  assert(mgr:attach_luv(uv))
  local st = luv_client(server:port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
  loop_until(function() return st.data:find("idle reply\n", 1, true) ~= nil end, 5000, "reply")
  local lag = st.times[#st.times] - sent_at
  T.ok(lag < 100, "reply arrived " .. lag .. " ms after res:send")
end)

test("Mongoose timers (set_timeout, set_interval) fire on time in the luv loop", function()
  local mgr = new_manager()
  assert(mgr:attach_luv(uv))
  local t0 = ms_now()
  local fired_at, ticks
  ticks = 0
  local every = mgr:set_interval(20, function()
    ticks = ticks + 1
  end)
  mgr:set_timeout(150, function()
    fired_at = ms_now()
  end)
  loop_until(function() return fired_at ~= nil end, 5000, "set_timeout")
  every:cancel()
  local late = fired_at - t0 - 150
  T.ok(late > -2 and late < 50, "set_timeout(150) fired " .. late .. " ms late")
  T.ok(ticks >= 5 and ticks <= 8, "set_interval(20) ticks in 150 ms: " .. ticks)
end)

test("the HTTP client (mgr:http_request) works in the luv loop", function()
  local mgr = new_manager()
  local _, base = hello_server(mgr)
  assert(mgr:attach_luv(uv))
  local resp, err
  mgr:http_request(base .. "/client", nil, function(r, e)
    resp, err = r, e
  end)
  loop_until(function() return resp ~= nil or err ~= nil end, 5000, "http_request callback")
  T.eq(err, nil, "error")
  T.eq(resp.status, 200, "status")
  T.eq(resp.body, "hello /client\n")
end)

-- A luv TCP server on HOST (tracked) running on_client(c) for each
-- connection it accepts; returns its port.
local function luv_server(on_client)
  local server = track(uv.new_tcp())
  assert(server:bind(HOST, 0))
  server:listen(16, function(err)
    assert(not err, err)
    local c = track(uv.new_tcp())
    server:accept(c)
    on_client(c)
  end)
  return server:getsockname().port
end

test("a Mongoose TCP client (tcp_connect from a luv callback) talks to a luv TCP server", function()
  local mgr = new_manager()
  assert(mgr:attach_luv(uv))
  local port = luv_server(function(c)
    c:read_start(function(rerr, chunk)
      if chunk then
        c:write("luv says: " .. chunk)
      elseif not c:is_closing() then
        c:close()
      end
      assert(not rerr, rerr)
    end)
  end)
  local got, sent_at, got_at = "", nil, nil
  local conn
  local kick = track(uv.new_timer())
  kick:start(20, 0, function()
    -- Outside any poll: only the glue's poll hint tells the loop to connect.
    conn = assert(mgr:tcp_connect("tcp://" .. HOST .. ":" .. port, {
      on_connect = function(cn)
        sent_at = ms_now()
        cn:send("ping\n")
      end,
      on_data = function(_, view)
        got = got .. view:string()
        got_at = ms_now()
      end,
    }))
  end)
  loop_until(function() return got == "luv says: ping\n" end, 5000, "answer from the luv server")
  T.ok(got_at - sent_at < 100, "round trip " .. (got_at - sent_at) .. " ms")
  conn:close()
  loop_until(function() return conn.closed end, 5000, "connection closed")
end)

test("set_timeout called from a luv I/O callback fires on time", function()
  local mgr = new_manager()
  assert(mgr:attach_luv(uv))
  local armed_at, fired_at
  local port = luv_server(function()
    armed_at = ms_now()
    mgr:set_timeout(100, function()
      fired_at = ms_now()
    end)
  end)
  local client = track(uv.new_tcp())
  client:connect(HOST, port, function() end)
  loop_until(function() return fired_at ~= nil end, 5000, "timer")
  local late = fired_at - armed_at - 100
  T.ok(late > -2 and late < 50, "set_timeout(100) from a luv callback fired " .. late .. " ms late")
end)

test("Mongoose UDP echo with a luv UDP client", function()
  local mgr = new_manager()
  local sock = assert(mgr:udp_listen("udp://" .. HOST .. ":0", {
    on_datagram = function(s, view, from)
      s:send_to(from, "echo " .. view:string())
    end,
  }))
  assert(mgr:attach_luv(uv))
  local client = track(uv.new_udp())
  assert(client:bind(HOST, 0))
  local replies = {}
  client:recv_start(function(err, data)
    assert(not err, err)
    if data then
      replies[#replies + 1] = data
    end
  end)
  for i = 1, 5 do
    client:send("d" .. i, HOST, sock:port(), function() end)
  end
  loop_until(function() return #replies == 5 end, 5000, "5 UDP replies")
  table.sort(replies)
  T.eq(table.concat(replies, ","), "echo d1,echo d2,echo d3,echo d4,echo d5")
end)

T.run()
