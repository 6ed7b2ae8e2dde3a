-- redis_incr: the mongoose side of bench/redis.sh. Every request runs one
-- Redis INCR through Debian's lua-nginx-redis (nginx.redis, unmodified) on
-- mongoose.ngx's cosockets and their keep-alive pool, and answers the
-- counter, as the nginx + Lua side does with the same library.
--
--   LIBS=build-bench/openresty-libs/usr/share/lua/5.1 \
--     scripts/lua-env.sh luajit bench/redis_incr.lua PORT REDIS_PORT
--
-- Listens on 127.0.0.1 only; stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")
require("mongoose.ngx")
package.path = (os.getenv("LIBS") or "/usr/share/lua/5.1") .. "/?.lua;" .. package.path
local redis = require("nginx.redis")

local port = tonumber(arg and arg[1]) or 8302
local redis_port = tonumber(arg and arg[2]) or 6379
local TEXT = { ["Content-Type"] = "text/plain" }

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
  local red = redis:new()
  red:set_timeout(1000)
  local ok, err = red:connect("127.0.0.1", redis_port)
  if not ok then
    return 500, "redis connect: " .. err .. "\n", TEXT
  end
  local n
  n, err = red:incr("bench:hits")
  if not n then
    return 500, "redis: " .. tostring(err) .. "\n", TEXT
  end
  red:set_keepalive(10000, 100)
  return 200, n .. "\n", TEXT
end))
mgr:run({ signals = { "INT", "TERM" } })
