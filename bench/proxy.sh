#!/usr/bin/env bash
# The proxy case: a handler that fetches every request from a local
# upstream over a keep-alive pool and sends its answer back. mongoose-ffi
# (bench/proxy.lua: mgr:fetch in the handler's task) against nginx's
# proxy_pass with an upstream keepalive pool (Debian's nginx-light), same
# upstream (the pure-C Mongoose hello server, bench_c_hello), same run.
#
#   bash bench/proxy.sh                      # both sides
#   SIDES=mongoose bash bench/proxy.sh       # only mongoose-ffi (no nginx installed)
#
# Environment: as bench/redis.sh (DURATION, WARMUP, CONNECTIONS, REPEAT,
# SIDES, BUILD_DIR, NO_BUILD, PORT_BASE, LUAJIT).
#
# The proxies run on CPU 0 (nginx: one worker, master_process off); wrk and
# the upstream on CPU 1. Printed: requests/s, the proxy's CPU time per
# request (user + system, /proc/PID/stat) and the ratios. The nginx side
# installs nginx-light when it is missing (as root).
BENCH_NAME=proxy
source "$(dirname "$0")/common.sh"

UP_PORT=$((PORT_BASE + 9))
MG_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))

start_upstream() {
  [ -x "$BUILD_DIR/bench_c_hello" ] || die "$BUILD_DIR/bench_c_hello was not built"
  port_free "$UP_PORT" || die "127.0.0.1:$UP_PORT is taken (set PORT_BASE)"
  start_server upstream "$CLIENT_CPU" "http://127.0.0.1:$UP_PORT/" "$BUILD_DIR/bench_c_hello" "$UP_PORT"
}

start_nginx() {
  local conf="$WORK_DIR/nginx-proxy.conf"
  mkdir -p "$WORK_DIR/nginx/logs"
  cat >"$conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $WORK_DIR/nginx/logs/error.log warn;
pid $WORK_DIR/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 100;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
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
    env BUILD_DIR="$BUILD_DIR" scripts/lua-env.sh "$LUAJIT" bench/proxy.lua "$MG_PORT" "$UP_PORT"
  SIDE_URL[mongoose]="http://127.0.0.1:$MG_PORT/"
  SIDE_PID[mongoose]="$SERVER_PID"
}

main() {
  need_tools
  if has_side nginx; then
    need_nginx 0
  fi
  build
  print_setup
  start_upstream
  if has_side mongoose; then start_mongoose; fi
  if has_side nginx; then start_nginx; fi
  compare proxy
  print_results
}
main "$@"
