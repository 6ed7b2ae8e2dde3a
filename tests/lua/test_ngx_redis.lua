-- Debian's lua-nginx-redis (OpenResty's lua-resty-redis, as nginx.redis),
-- unmodified, on mongoose.ngx's cosockets against a real redis-server
-- started on a free loopback port: commands, nulls, errors, pipelines,
-- pub/sub, timeouts, the keep-alive pool, and handlers that talk to Redis
-- while other requests are served.
local T = require("testlib")
local peers = require("testpeers")
peers.need_openresty_libs()
local H = require("testhttp").server()
local mongoose = require("mongoose")
local ngx = require("mongoose.ngx")
local redis = require("nginx.redis")

local mgr = H.mgr
local PORT = peers.redis()

-- with_red(name, fn): a test running fn(red) in a task, red connected.
local connect, with_red = peers.client(mgr, redis, PORT)

local function in_task(fn)
  return T.in_task(mgr, fn)
end

with_red("commands: set, get, incr, del; a missing key is ngx.null", function(red)
  T.eq(red:set("k1", "v1"), "OK", "set")
  T.eq(red:get("k1"), "v1", "get")
  T.eq(red:get("no such key"), ngx.null, "missing key")
  T.eq(red:del("n"), 0, "del of nothing")
  T.eq(red:incr("n"), 1, "incr")
  T.eq(red:incr("n"), 2, "incr again")
  local big = T.random_bytes(300000, 3)
  T.eq(red:set("big", big), "OK", "set 300 kB")
  T.eq(red:get("big"), big, "get 300 kB")
end)

with_red("an error reply is false and the message; the connection goes on", function(red)
  red:set("text", "abc")
  local ok, err = red:incr("text")
  T.eq(ok, false, "error reply")
  T.match(err, "not an integer", "message")
  T.eq(red:get("text"), "abc", "next command")
end)

with_red("hashes and array replies", function(red)
  red:del("h")
  T.eq(red:hmset("h", { a = "1", b = "2" }), "OK", "hmset")
  local all = red:array_to_hash(red:hgetall("h"))
  T.eq(all.a, "1", "a")
  T.eq(all.b, "2", "b")
  local vals = red:hmget("h", "a", "nope")
  T.eq(vals[1], "1", "hmget a")
  T.eq(vals[2], ngx.null, "hmget missing")
end)

with_red("pipelines: one send, several replies", function(red)
  red:init_pipeline()
  red:set("p1", "x")
  red:incr("pc")
  red:get("p1")
  red:incr("p1") -- an error inside the pipeline
  local results = assert(red:commit_pipeline())
  T.eq(#results, 4, "replies")
  T.eq(results[1], "OK", "set")
  T.eq(type(results[2]), "number", "incr")
  T.eq(results[3], "x", "get")
  T.eq(results[4][1], false, "the error is a table")
end)

T.test("a read timeout returns nil, timeout (BLPOP on an empty list)", function()
  in_task(function()
    local red = connect()
    red:set_timeout(100)
    local t0 = mongoose.core.millis()
    local res, err = red:blpop("empty-list", 5)
    T.eq(res, nil, "no reply")
    T.eq(err, "timeout", "error")
    T.ok(mongoose.core.millis() - t0 < 1000, "after about 100 ms")
  end)
end)

T.test("pub/sub between two connections", function()
  in_task(function()
    local sub = connect()
    local res = assert(sub:subscribe("chan"))
    T.eq(res[1], "subscribe", "subscribed")
    local pub = connect()
    T.eq(pub:publish("chan", "hello"), 1, "one subscriber")
    local msg = assert(sub:read_reply())
    T.eq(msg[1], "message", "kind")
    T.eq(msg[3], "hello", "payload")
    sub:close()
    pub:close()
  end)
end)

T.test("set_keepalive pools the connection: get_reused_times counts", function()
  in_task(function()
    for i = 0, 3 do
      local red = connect()
      T.eq(red:get_reused_times(), i, "reused times")
      assert(red:set_keepalive(10000, 4))
    end
  end)
  T.eq(mongoose.socket.pool_count(mgr, "127.0.0.1:" .. PORT), 1, "one idle connection")
end)

T.test("20 concurrent handlers each INCR through the pool; others are served meanwhile", function()
  H.routes["/incr"] = function()
    local red = connect()
    local n = assert(red:incr("hits"))
    ngx.sleep(0.05) -- the connection waits while others use theirs
    assert(red:set_keepalive(10000, 30))
    return 200, n .. "\n"
  end
  in_task(function() connect():del("hits") end)
  local out, rc = H.sh([[
for i in $(seq 1 20); do curl -sS -m 5 "]] .. H.BASE .. [[/incr" >> "$0.out" & done
curl -sS -m 5 "]] .. H.BASE .. [[/hello"
wait
sort -n "$0.out" | tr '\n' ' '
]], 15000)
  T.eq(rc, 0, "clients")
  T.match(out, "^hello\n", "the plain request")
  local want = {}
  for i = 1, 20 do
    want[i] = tostring(i)
  end
  T.eq(out:gsub("^hello\n", ""), table.concat(want, " ") .. " ", "each got its own number")
  T.ok(mongoose.socket.pool_count(mgr, "127.0.0.1:" .. PORT) <= 20, "at most 20 pooled")
end)

T.test("from the main program the same calls block while the manager serves", function()
  local red = connect()
  T.eq(red:set("main", "yes"), "OK", "set")
  T.eq(red:get("main"), "yes", "get")
  red:close()
end)

T.test("a closed redis: connect fails with connection refused", function()
  local port = T.free_port()
  in_task(function()
    local red = redis:new()
    red:set_timeout(1000)
    local ok, err = red:connect("127.0.0.1", port)
    T.eq(ok, nil, "connect")
    T.eq(err, "connection refused", "error")
  end)
end)

T.run()
