-- Debian's lua-nginx-memcached (OpenResty's lua-resty-memcached, as
-- nginx.memcached), unmodified, on mongoose.ngx's cosockets against a
-- real memcached started on a free loopback port.
local T = require("testlib")
local peers = require("testpeers")
peers.need_openresty_libs()
local H = require("testhttp").server()
local ngx = require("mongoose.ngx")
local memcached = require("nginx.memcached")

local mgr = H.mgr
local PORT = peers.memcached()

-- with_mc(name, fn): a test running fn(mc) in a task, mc connected.
local connect, with_mc = peers.client(mgr, memcached, PORT)

with_mc("set, get, add, replace, append, prepend, delete", function(mc)
  assert(mc:flush_all())
  T.eq(mc:set("dog", "32", 0, 7), 1, "set")
  local v, flags = mc:get("dog")
  T.eq(v, "32", "get")
  T.eq(flags, "7", "flags")
  local ok, err = mc:add("dog", "x")
  T.eq(ok, nil, "add of an existing key")
  T.eq(err, "NOT_STORED", "error")
  T.eq(mc:replace("dog", "33"), 1, "replace")
  T.eq(mc:append("dog", "a"), 1, "append")
  T.eq(mc:prepend("dog", "p"), 1, "prepend")
  T.eq((mc:get("dog")), "p33a", "value")
  T.eq(mc:delete("dog"), 1, "delete")
  T.eq(mc:get("dog"), nil, "gone")
end)

with_mc("incr and decr; a key with spaces is escaped (ngx.escape_uri)", function(mc)
  mc:set("a key with spaces", "10")
  T.eq(mc:incr("a key with spaces", 5), "15", "incr")
  T.eq(mc:decr("a key with spaces", 3), "12", "decr")
  T.eq((mc:get("a key with spaces")), "12", "get")
end)

with_mc("multi-get, gets and cas", function(mc)
  mc:set("m1", "one")
  mc:set("m2", "two")
  local res = assert(mc:get({ "m1", "m2", "m3" }))
  T.eq(res.m1[1], "one", "m1")
  T.eq(res.m2[1], "two", "m2")
  T.eq(res.m3, nil, "m3")
  local v, _, cas = mc:gets("m1")
  T.eq(v, "one", "gets")
  T.eq(mc:cas("m1", "uno", cas), 1, "cas with the right unique")
  local ok, err = mc:cas("m1", "eins", cas)
  T.eq(ok, nil, "cas with a stale unique")
  T.eq(err, "EXISTS", "error")
end)

T.test("a 500 kB value; version; keepalive reuse", function()
  T.in_task(mgr, function()
    local mc = connect()
    local big = T.random_bytes(500000, 11)
    T.eq(mc:set("big", big), 1, "set")
    T.eq((mc:get("big")), big, "get")
    T.match(assert(mc:version()), "^%d+%.%d+", "version")
    assert(mc:set_keepalive(10000, 4))
    local again = connect()
    T.eq(again:get_reused_times(), 1, "the pooled connection is reused")
    again:close()
  end)
end)

T.test("handlers use memcached while other requests are served", function()
  H.routes["/mc"] = function(req)
    local mc = connect()
    local key = "visits:" .. req:query_params("who")
    mc:add(key, "0")
    local n = assert(mc:incr(key, 1))
    ngx.sleep(0.02)
    mc:set_keepalive(10000, 10)
    return 200, n .. "\n"
  end
  local out = H.sh([[
for i in $(seq 1 10); do curl -sS -m 5 "]] .. H.BASE .. [[/mc?who=x" >> "$0.out" & done
wait
sort -n "$0.out" | tr '\n' ' '
]], 15000)
  T.eq(out, "1 2 3 4 5 6 7 8 9 10 ", "each request counted once")
end)

T.run()
