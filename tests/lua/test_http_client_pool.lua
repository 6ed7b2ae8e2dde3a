-- The HTTP client's keep-alive pool, cancel(), streamed request bodies,
-- streamed responses (on_chunk), redirects, and a proxying handler,
-- against this manager's own server and Python's http.server.
local T = require("testlib")
local H = require("testhttp").server()
local mongoose = require("mongoose")
local socket = require("mongoose.socket")

local mgr, routes = H.mgr, H.routes
local state = { closed = {} }

routes["/port"] = function(req)
  return 200, tostring(req:remote_port())
end
routes["/close-after"] = function(req)
  return 200, tostring(req:remote_port()), { Connection = "close" }
end
routes["/never"] = function(req, res)
  res:on_close(function() state.never_closed = true end)
end
routes["/size"] = function(req)
  if req.streaming then
    local n = 0
    while true do
      local piece = req:read_body()
      if not piece then break end
      n = n + #piece
    end
    return 200, "streamed " .. n .. " " .. tostring(req:header("transfer-encoding"))
  end
  return 200, "whole " .. #req:body() .. " " .. tostring(req:header("transfer-encoding"))
end
routes["/big"] = function(req, res)
  res:begin(200, { ["Content-Type"] = "application/octet-stream" })
  for i = 1, 50 do
    res:write(string.rep(string.char(64 + i % 26), 65536))
    if i % 10 == 0 then
      mongoose.sleep(5)
    end
  end
  res:finish()
end
routes["/redirect"] = function(req)
  local n = tonumber(req:query_params("n")) or 1
  if n <= 0 then
    return 200, req.method .. " arrived " .. #(req:body() or "")
  end
  local code = tonumber(req:query_params("code")) or 302
  return code, "", { Location = "/redirect?code=" .. code .. "&n=" .. (n - 1) }
end
routes["/relative/a"] = function()
  return 301, "", { Location = "b?x=1" }
end
routes["/relative/b"] = function(req)
  return 200, "b " .. req.query
end
routes["/proxy"] = function(req)
  -- Streams the upload to the upstream and its answer back.
  local resp, err = mgr:fetch(H.BASE .. "/size", {
    method = "POST",
    body = function() return req:read_body() end,
  })
  if not resp then
    return 502, err
  end
  return resp.status, "proxied: " .. resp.body
end

T.test("keep-alive: ten fetches share one connection", function()
  local ports = {}
  for i = 1, 10 do
    ports[i] = assert(mgr:fetch(H.BASE .. "/port")).body
  end
  for i = 2, 10 do
    T.eq(ports[i], ports[1], "request " .. i .. " came from the same port")
  end
  T.eq(socket.pool_count(mgr, "http://127.0.0.1:" .. H.PORT), 1, "one idle connection")
end)

T.test("keep-alive across tasks: a task that ends does not close the connection another took", function()
  -- Each fetch runs in a task of its own (http_request); the pooled
  -- connection (and its socket object) goes from one to the next while
  -- the tasks before end.
  local ports, done = {}, 0
  local function step(i)
    assert(mgr:http_request(H.BASE .. "/port", nil, function(resp, err)
      ports[i] = resp and resp.body or err
      done = done + 1
      if i < 5 then
        step(i + 1)
      end
    end))
  end
  step(1)
  T.ok(T.poll_until(mgr, function() return done == 5 end, 5000), "five requests done")
  for i = 2, 5 do
    T.eq(ports[i], ports[1], "request " .. i .. " came from the same port")
  end
  T.eq(socket.pool_count(mgr, "http://127.0.0.1:" .. H.PORT), 1, "one idle connection")
end)

routes["/slow-port"] = function(req)
  req:read_body()
  return 200, tostring(req:remote_port())
end

T.test("a task that ends while another uses the connection it had pooled leaves it alone", function()
  local a_port, b_result
  mgr:spawn(function()
    a_port = assert(mgr:fetch(H.BASE .. "/port")).body -- pooled now
    mongoose.sleep(80) -- B takes the connection meanwhile; A ends during B's fetch
  end)
  mgr:spawn(function()
    mongoose.sleep(30)
    -- Its streamed body waits while it holds the connection, not reading.
    local pieces = { "a", "b" }
    local resp, err = mgr:fetch(H.BASE .. "/slow-port", { method = "POST", body = function()
      mongoose.sleep(60)
      return table.remove(pieces, 1)
    end })
    b_result = resp and resp.body or ("error: " .. tostring(err))
  end)
  T.ok(T.poll_until(mgr, function() return b_result ~= nil end, 5000), "B done")
  T.eq(b_result, a_port, "B's fetch went over A's pooled connection and was answered")
end)

T.test("Connection: close from the server, or keepalive = false: a new connection each time", function()
  local a = assert(mgr:fetch(H.BASE .. "/close-after")).body
  local b = assert(mgr:fetch(H.BASE .. "/close-after")).body
  T.ok(a ~= b, "different ports")
  local c = assert(mgr:fetch(H.BASE .. "/port", { keepalive = false })).body
  local d = assert(mgr:fetch(H.BASE .. "/port", { keepalive = false })).body
  T.ok(c ~= d, "different ports without keep-alive")
end)

T.test("a pooled connection the server closes leaves the pool; the next fetch opens a new one", function()
  local l = assert(mgr:http_listen("http://127.0.0.1:0", H.handler, { idle_timeout = 100 }))
  local base = "http://127.0.0.1:" .. l:port()
  local first = assert(mgr:fetch(base .. "/port")).body
  T.eq(socket.pool_count(mgr, "http://127.0.0.1:" .. l:port()), 1, "pooled")
  T.sleep_polling(mgr, 400) -- the server closes the idle connection
  local r, err = mgr:fetch(base .. "/port")
  T.ok(r, "fetch after the server's idle timeout: " .. tostring(err))
  T.ok(r.body ~= first, "on a new connection")
  l:close()
end)

T.test("cancel(): the callback is not called and the connection closes", function()
  state.never_closed = false
  local called = false
  local handle = assert(mgr:http_request(H.BASE .. "/never", nil, function() called = true end))
  T.sleep_polling(mgr, 100)
  T.eq(handle:cancel(), true, "cancelled")
  T.eq(handle:cancel(), false, "a second cancel does nothing")
  T.ok(T.poll_until(mgr, function() return state.never_closed end, 3000), "the server saw the close")
  T.sleep_polling(mgr, 50)
  T.eq(called, false, "no callback")
end)

T.test("streamed request bodies: chunked, or with the caller's Content-Length", function()
  local pieces = { "abc", "defgh", string.rep("z", 100000) }
  local i = 0
  local r = assert(mgr:fetch(H.BASE .. "/size", {
    method = "POST",
    body = function()
      i = i + 1
      mongoose.sleep(1) -- the body function may wait (it runs in the request's task)
      return pieces[i]
    end,
  }))
  T.eq(r.body, "whole 100008 chunked", "sent chunked")
  i = 0
  r = assert(mgr:fetch(H.BASE .. "/size", {
    method = "PUT", headers = { ["Content-Length"] = 100008 },
    body = function() i = i + 1 return pieces[i] end,
  }))
  T.eq(r.body, "whole 100008 nil", "sent with Content-Length")
end)

T.test("streamed responses: on_chunk gets 3.2 MB piece by piece", function()
  local pieces, size = 0, 0
  local first_status
  local r = assert(mgr:fetch(H.BASE .. "/big", {
    on_chunk = function(piece, resp)
      first_status = first_status or resp.status
      pieces, size = pieces + 1, size + #piece
    end,
  }))
  T.eq(size, 50 * 65536, "bytes")
  T.ok(pieces > 1, "pieces: " .. pieces)
  T.eq(first_status, 200, "the status was known to on_chunk")
  T.eq(r.body, "", "no body kept")
  local whole = assert(mgr:fetch(H.BASE .. "/big"))
  T.eq(#whole.body, 50 * 65536, "the same, whole")
  local small, err = mgr:fetch(H.BASE .. "/big", { max_body = 100000 })
  T.eq(small, nil, "over max_body")
  T.match(err, "too large", "error")
end)

T.test("redirects: not followed by default, followed up to max_redirects", function()
  local r = assert(mgr:fetch(H.BASE .. "/redirect?n=2"))
  T.eq(r.status, 302, "by default the 302 itself")
  r = assert(mgr:fetch(H.BASE .. "/redirect?n=2", { max_redirects = 5 }))
  T.eq(r.status, 200, "followed")
  T.eq(r.redirects, 2, "two hops")
  T.match(r.url, "n=0$", "the final URL")
  r = assert(mgr:fetch(H.BASE .. "/redirect?n=4", { max_redirects = 2 }))
  T.eq(r.status, 302, "stops after max_redirects")
  r = assert(mgr:fetch(H.BASE .. "/redirect?n=1&code=303", { method = "POST", body = "data", max_redirects = 1 }))
  T.eq(r.body, "GET arrived 0", "303: GET without the body")
  r = assert(mgr:fetch(H.BASE .. "/redirect?n=1&code=307", { method = "POST", body = "data", max_redirects = 1 }))
  T.eq(r.body, "POST arrived 4", "307: the same method and body")
  r = assert(mgr:fetch(H.BASE .. "/relative/a", { max_redirects = 1 }))
  T.eq(r.body, "b x=1", "a relative Location")
end)

T.test("a proxying handler streams the upload to its upstream", function()
  local f = T.tmpdir() .. "/up.bin"
  T.write_file(f, T.random_bytes(2000000, 5))
  local l = assert(mgr:http_listen("http://127.0.0.1:0", H.handler, { stream_threshold = 65536 }))
  local out = T.curl(mgr, "--data-binary @" .. T.q(f) .. " http://127.0.0.1:" .. l:port() .. "/proxy",
                     20000, 15)
  T.eq(out, "proxied: whole 2000000 chunked", "the upstream got it all, chunked")
  l:close()
end)

T.test("python http.server: keep-alive with HTTP/1.0 responses closes each time", function()
  local dir = T.tmpdir() .. "/www"
  os.execute("mkdir -p " .. T.q(dir))
  T.write_file(dir .. "/f.txt", "from python\n")
  local port = T.free_port()
  local pidfile = T.tmpdir() .. "/http_server.pid"
  local script = T.tmpdir() .. "/http_server.sh"
  T.write_file(script, "cd " .. T.q(dir) .. "\necho $$ > " .. T.q(pidfile) .. "\nexec timeout 60 "
               .. T.q(T.python) .. " -m http.server " .. port .. " --bind 127.0.0.1\n")
  local job = T.spawn("sh " .. T.q(script))
  local up = T.poll_until(mgr, function()
    local s = socket.tcp(mgr)
    local ok = s:connect("127.0.0.1", port)
    s:close()
    return ok
  end, 5000)
  T.ok(up, "python's server started")
  for _ = 1, 3 do
    local r = assert(mgr:fetch("http://127.0.0.1:" .. port .. "/f.txt"))
    T.eq(r.body, "from python\n", "body")
  end
  T.eq(socket.pool_count(mgr, "http://127.0.0.1:" .. port), 0, "HTTP/1.0 answers are not pooled")
  os.execute("kill " .. tonumber(T.read_file(pidfile)) .. " 2>/dev/null") -- the pid of timeout
  T.wait(job, mgr)
end)

T.run()
