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
INSTALL_WRK=1
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

# The back end: the pure-C Mongoose hello server.
start_backend() {
  start_server upstream "$CLIENT_CPU" "http://127.0.0.1:$BACKEND_PORT/" \
    "$BUILD_DIR/bench_c_hello" "$BACKEND_PORT"
}

start_nginx() {
  serve_nginx nginx "$NGINX_PORT" 0 "$(
    cat <<CONF
error_log $WORK_DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
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
  )"
}

start_mongoose() {
  serve mongoose mongoose "http://127.0.0.1:$MG_PORT/" \
    scripts/lua-env.sh "$LUAJIT" bench/proxy.lua "$MG_PORT" "$BACKEND_PORT"
}

against_nginx proxy 0 bench_c_hello
