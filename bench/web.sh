#!/usr/bin/env bash
# The costs of mongoose.web: routing (a raw http_listen handler against an
# app with 50 parameterised routes) and compression (a 10 KiB text body as
# it is against gzip). Prints req/s (wrk) and the server's CPU time per
# request (utime + stime from /proc/PID/stat over the measured run).
#
#   bash bench/web.sh                 DURATION=5 CONNECTIONS=50 bash bench/web.sh
#
# The server runs on CPU 0, wrk on CPU 1 (taskset); traffic stays on
# 127.0.0.1; every run is bounded by DURATION and the server is stopped on
# exit. Needs wrk (scripts/setup-deps.sh --with-bench-tools) and a build in
# BUILD_DIR (default build). Also: LUAJIT (default luajit).
LOG_TAG=web
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
BUILD_DIR="${BUILD_DIR:-build}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
PORT="${PORT:-8131}"

# run MODE PATH [wrk args...]: one server, a warm-up, one measured run.
run() {
  local mode="$1" url="http://127.0.0.1:$PORT$2"
  shift 2
  start_server "web-$mode" "$SERVER_CPU" "$url" scripts/lua-env.sh "$LUAJIT" bench/web_server.lua "$mode" "$PORT"
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$url" "$CONNECTIONS" "$WARMUP" "$mode-warmup" "$SERVER_PID" "$@"
  fi
  run_wrk "$url" "$CONNECTIONS" "$DURATION" "$mode" "$SERVER_PID" "$@"
  awk -v m="$mode" -v r="$WRK_RPS" -v n="$WRK_REQUESTS" -v d="$WRK_TICKS" -v hz="$CLK_TCK" -v x="$WRK_XFER" \
    'BEGIN { printf "%-8s %12.0f req/s %10.1f us CPU/req  %10s/s\n", m, r, d / hz * 1e6 / n, x }'
  stop_server "$SERVER_PID"
}

need_tools wrk
need_build
echo "routing: GET /r37/123/items/9 (wrk -c$CONNECTIONS, ${DURATION}s)"
run raw /r37/123/items/9
run routes /r37/123/items/9
echo "compression: GET /text, 10 KiB of text (Accept-Encoding: gzip)"
run plain /text -H "Accept-Encoding: gzip"
run gzip /text -H "Accept-Encoding: gzip"
