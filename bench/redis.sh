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
source "$(dirname "$0")/common.sh"

REDIS_PORT=$((PORT_BASE + 9))
MG_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))

start_redis() {
  command -v redis-server >/dev/null || die "redis-server is missing (apt-get install redis-server)"
  port_free "$REDIS_PORT" || die "127.0.0.1:$REDIS_PORT is taken (set PORT_BASE)"
  taskset -c "$CLIENT_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$WORK_DIR" >"$WORK_DIR/redis.log" 2>&1 &
  PIDS+=($!)
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  die "redis-server did not start"
}

start_nginx() {
  local conf="$WORK_DIR/nginx-redis.conf"
  mkdir -p "$WORK_DIR/nginx/logs"
  cat >"$conf" <<CONF
$(nginx_lua_modules)
worker_processes 1;
master_process off;
daemon off;
error_log $WORK_DIR/nginx/logs/error.log warn;
pid $WORK_DIR/nginx/nginx.pid;
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
        local ok, err = red:connect("127.0.0.1", $REDIS_PORT)
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
  start_server nginx "$SERVER_CPU" "http://127.0.0.1:$NGINX_PORT/" nginx -p "$WORK_DIR/nginx" -c "$conf"
  SIDE_URL[nginx]="http://127.0.0.1:$NGINX_PORT/"
  SIDE_PID[nginx]="$SERVER_PID"
}

start_mongoose() {
  start_server mongoose "$SERVER_CPU" "http://127.0.0.1:$MG_PORT/" \
    env LIBS="$LIBS_DIR" BUILD_DIR="$BUILD_DIR" scripts/lua-env.sh "$LUAJIT" bench/redis_incr.lua \
    "$MG_PORT" "$REDIS_PORT"
  SIDE_URL[mongoose]="http://127.0.0.1:$MG_PORT/"
  SIDE_PID[mongoose]="$SERVER_PID"
}

main() {
  need_tools
  if has_side nginx; then
    need_nginx 1
  fi
  build
  need_openresty_libs
  print_setup
  start_redis
  if has_side mongoose; then start_mongoose; fi
  if has_side nginx; then start_nginx; fi
  compare redis_incr
  print_results
}
main "$@"
