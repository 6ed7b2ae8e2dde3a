#!/usr/bin/env bash
# A handler that runs one Redis INCR per request through OpenResty's
# lua-resty-redis (Debian's lua-nginx-redis, unmodified) and a keep-alive
# pool: mongoose-ffi (bench/redis_incr.lua, cosockets of mongoose.ngx)
# against nginx + Lua (Debian's nginx-light + libnginx-mod-http-lua,
# content_by_lua with the same library), same redis-server, same run.
#
#   bash bench/redis.sh                      # both sides
#   SIDES=mongoose bash bench/redis.sh       # only mongoose-ffi (no nginx installed)
#
# Environment: DURATION (10 s per wrk run), WARMUP (2 s), CONNECTIONS
# ("50"), REPEAT (3, medians), SIDES ("mongoose nginx"), BUILD_DIR
# (build-bench), NO_BUILD (1: use BUILD_DIR as it is), PORT_BASE (8301),
# LUAJIT (luajit).
#
# The servers under test run on CPU 0, one process each (nginx: one worker,
# master_process off); wrk and redis-server on CPU 1. Printed: requests/s
# (wrk), the server's CPU time per request (user + system, /proc/PID/stat)
# and the ratios. The nginx side installs nginx-light and
# libnginx-mod-http-lua when they are missing (as root), which replaces
# Debian's luajit with luajit2: run it on a machine of its own.
BENCH_NAME=redis
INSTALL_WRK=1
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

# The back end: redis-server, and lua-nginx-redis for both sides.
start_backend() {
  command -v redis-server >/dev/null || die "redis-server is missing (apt-get install redis-server)"
  need_openresty_lib lua-nginx-redis nginx/redis.lua
  start_server redis-server "$CLIENT_CPU" "tcp://127.0.0.1:$BACKEND_PORT" redis-server \
    --port "$BACKEND_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK_DIR"
}

start_nginx() {
  serve_nginx nginx "$NGINX_PORT" 1 "$(
    cat <<CONF
error_log $WORK_DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  lua_package_path "$LIBS_DIR/?.lua;;";
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      content_by_lua_block {
        local redis = require "nginx.redis"
        local red = redis:new()
        red:set_timeout(1000)
        local ok, err = red:connect("127.0.0.1", $BACKEND_PORT)
        if not ok then
          ngx.status = 500
          ngx.say("redis connect: ", err)
          return
        end
        local n, err = red:incr("bench:hits")
        if not n then
          ngx.status = 500
          ngx.say("redis: ", err)
          return
        end
        red:set_keepalive(10000, 100)
        ngx.say(n)
      }
    }
  }
}
CONF
  )"
}

start_mongoose() {
  serve mongoose mongoose "http://127.0.0.1:$MG_PORT/" env LIBS="$LIBS_DIR" \
    scripts/lua-env.sh "$LUAJIT" bench/redis_incr.lua "$MG_PORT" "$BACKEND_PORT"
}

against_nginx redis_incr 1
