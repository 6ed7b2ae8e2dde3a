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
# BUILD_DIR (default build).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-50}"
PORT="${PORT:-8131}"
export BUILD_DIR="${BUILD_DIR:-build}"
command -v wrk >/dev/null || { echo "web.sh: wrk is missing (scripts/setup-deps.sh --with-bench-tools)" >&2; exit 2; }
TICKS="$(getconf CLK_TCK)"
SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run MODE PATH [wrk args...]: one server, a warm-up, one measured run.
run() {
  local mode="$1" path="$2"; shift 2
  taskset -c 0 bash scripts/lua-env.sh luajit bench/web_server.lua "$mode" "$PORT" &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT$path" && break; sleep 0.05; done
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$WARMUP"s "$@" "http://127.0.0.1:$PORT$path" >/dev/null
  local pid; pid="$(pgrep -P "$SERVER_PID" luajit || echo "$SERVER_PID")"
  local t0; t0="$(cpu_ticks "$pid")"
  local out; out="$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION"s "$@" "http://127.0.0.1:$PORT$path")"
  local t1; t1="$(cpu_ticks "$pid")"
  local reqs; reqs="$(echo "$out" | awk '/requests in/ { print $1 }')"
  local rps; rps="$(echo "$out" | awk '/Requests\/sec/ { print $2 }')"
  local xfer; xfer="$(echo "$out" | awk '/Transfer\/sec/ { print $2 }')"
  awk -v m="$mode" -v r="$rps" -v n="$reqs" -v d="$((t1 - t0))" -v hz="$TICKS" -v x="$xfer" \
    'BEGIN { printf "%-8s %12.0f req/s %10.1f us CPU/req  %10s/s\n", m, r, d / hz * 1e6 / n, x }'
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

echo "routing: GET /r37/123/items/9 (wrk -c$CONNECTIONS, ${DURATION}s)"
run raw /r37/123/items/9
run routes /r37/123/items/9
echo "compression: GET /text, 10 KiB of text (Accept-Encoding: gzip)"
run plain /text -H "Accept-Encoding: gzip"
run gzip /text -H "Accept-Encoding: gzip"
