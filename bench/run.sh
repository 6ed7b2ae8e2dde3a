#!/usr/bin/env bash
# Benchmarks of mongoose-ffi against pure-C Mongoose (see bench/README.md).
#
#   bash bench/run.sh                 (or: make bench)
#   DURATION=5 CONNECTIONS="50" bash bench/run.sh
#
# Environment:
#   DURATION     seconds of each measured wrk run (default 10)
#   WARMUP       seconds of an unmeasured wrk run before a server's rounds (default 2)
#   CONNECTIONS  wrk connection counts, one round each (default "50 200")
#   REPEAT       wrk runs per server and round; the median counts (default 1)
#   BENCHMARKS   which benchmarks to run (default: all, i.e. "http_hello ws_echo tcp_echo udp_echo
#                https_hello")
#   TCP_CONNECTIONS  tcp_echo: connections (default 8)
#   TCP_CHUNK    tcp_echo: bytes per write (default 65536)
#   UDP_WINDOW   udp_echo: datagrams in flight (default 50)
#   UDP_SIZE     udp_echo: datagram size in bytes (default 64)
#   WS_CONNECTIONS  ws_echo: WebSocket connections (default 50)
#   WS_WINDOW    ws_echo: messages each connection sends per window before
#                awaiting their echoes (default 16)
#   WS_SIZE      ws_echo: message size in bytes (default 32)
#   BUILD_DIR    build folder (default build-bench, so build/ is left alone)
#   NO_BUILD     1: skip the build and use what BUILD_DIR holds (default 0)
#   PORT_BASE    first TCP port used on 127.0.0.1 (default 8101)
#   LUAJIT       LuaJIT binary (default luajit)
#
# Servers run pinned to CPU 0 and wrk to CPU 1 (taskset); all traffic goes to
# 127.0.0.1. Everything started here is stopped on exit, also on errors.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-50 200}"
REPEAT="${REPEAT:-1}"
BENCHMARKS="${BENCHMARKS:-http_hello ws_echo tcp_echo udp_echo https_hello}"
TCP_CONNECTIONS="${TCP_CONNECTIONS:-8}"
TCP_CHUNK="${TCP_CHUNK:-65536}"
UDP_WINDOW="${UDP_WINDOW:-50}"
UDP_SIZE="${UDP_SIZE:-64}"
WS_CONNECTIONS="${WS_CONNECTIONS:-50}"
WS_WINDOW="${WS_WINDOW:-16}"
WS_SIZE="${WS_SIZE:-32}"
SUMMARY=()   # result lines of benchmarks outside RESULTS' table (ws_echo)
BUILD_DIR="${BUILD_DIR:-build-bench}"
NO_BUILD="${NO_BUILD:-0}"
PORT_BASE="${PORT_BASE:-8101}"
LUAJIT="${LUAJIT:-luajit}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-bench.XXXXXX")"
SERVER_PIDS=()
WRK_PID=
WRK_RPS=
RESULTS=()   # "bench|connections|c_rps|lua_rps|rps_ratio|c_us|lua_us|cpu_ratio"
CLK_TCK="$(getconf CLK_TCK)"

log() { echo "bench: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

cleanup() {
  local pid
  if [ -n "$WRK_PID" ]; then
    kill -TERM "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
  fi
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${SERVER_PIDS[@]}"; do
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- setup ---------------------------------------------------------------------

need_tools() {
  if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      log "installing wrk"
      timeout 300 apt-get install -y wrk >/dev/null || die "apt-get install wrk failed"
    else
      die "wrk is missing (Debian: apt-get install wrk, as root)"
    fi
  fi
  local tool
  for tool in curl taskset timeout "$LUAJIT"; do
    command -v "$tool" >/dev/null || die "$tool is missing"
  done
  if [ "$(nproc)" -lt 2 ]; then
    die "needs 2 CPUs (server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU); nproc is $(nproc)"
  fi
}

build() {
  if [ "$NO_BUILD" = 1 ]; then
    log "NO_BUILD=1: using the existing build in $BUILD_DIR"
  else
    log "building into $BUILD_DIR"
    BUILD_DIR="$BUILD_DIR" bash scripts/build.sh -DMGFFI_BUILD_BENCH=ON >/dev/null ||
      die "the build failed (see above)"
  fi
  [ -x "$BUILD_DIR/bench_c_hello" ] || die "$BUILD_DIR/bench_c_hello was not built"
  [ -f "$BUILD_DIR/mongoose_ffi.so" ] || die "$BUILD_DIR/mongoose_ffi.so was not built"
}

cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt"
}

print_setup() {
  local sanitize
  sanitize="$(cache_value MGFFI_SANITIZE)"
  echo "== mongoose-ffi benchmarks"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "kernel:   $(uname -sr)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1)"
  echo "wrk:      $(wrk -v 2>&1 | head -n1)"
  echo "mongoose: $(sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' "$(cache_value MONGOOSE_HEADER)")"
  echo "build:    $BUILD_DIR ($(cache_value CMAKE_BUILD_TYPE), sanitizers ${sanitize:-OFF})"
  echo "wrk runs: ${DURATION}s each after a ${WARMUP}s warm-up, -t1, connections: $CONNECTIONS," \
    "C and Lua alternately, median of $REPEAT"
  echo "pinning:  servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
  case "$sanitize" in ON | TRUE | 1) log "warning: sanitizers are on in $BUILD_DIR: figures are not representative" ;; esac
}

# ---- servers and wrk -----------------------------------------------------------

# SCHEME: http, or https while the https_hello benchmark runs (answers and
# run_wrk use it; the test certificate is not verified there).
SCHEME=http

# answers PORT: true when an HTTP server answers on 127.0.0.1:PORT.
answers() {
  curl -s -k -o /dev/null --max-time 1 "$SCHEME://127.0.0.1:$1/" 2>/dev/null
}

# start_server NAME PORT COMMAND...: starts COMMAND pinned to the server CPU
# and waits (up to 10 s) until it answers on PORT. Sets SERVER_PID.
start_server() {
  local name="$1" port="$2"
  shift 2
  if answers "$port"; then
    die "something already answers on 127.0.0.1:$port (set PORT_BASE)"
  fi
  taskset -c "$SERVER_CPU" "$@" >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before answering"
    fi
    if answers "$port"; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not answer on 127.0.0.1:$port within 10 s"
}

# stop_server PID: SIGTERM, then waits (SIGKILL after 10 s).
stop_server() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "warning: pid $pid ignored SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: CPU time (user + system, in clock ticks) used by PID so far.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run_wrk PORT CONNECTIONS SECONDS NAME SERVER_PID: runs wrk pinned to the
# client CPU and sets WRK_RPS to its requests/s, WRK_US to the server's CPU
# time per request in microseconds (user + system, from /proc; unlike
# requests/s it hardly moves when other processes compete for the CPU) and
# WRK_BUSY to the server's CPU use in percent of one core. Keeps wrk's report
# in WORK_DIR. wrk runs as a background job so that a signal stops the script
# (and wrk, from cleanup) at once.
run_wrk() {
  local port="$1" conns="$2" secs="$3" name="$4" pid="$5"
  local out="$WORK_DIR/wrk-$name-c$conns.txt" rc=0 t0 t1 w0 w1
  t0="$(cpu_ticks "$pid")"
  w0="$(date +%s%N)"
  timeout $((secs + 30)) taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$conns" -d"${secs}s" "$SCHEME://127.0.0.1:$port/" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  t1="$(cpu_ticks "$pid")"
  w1="$(date +%s%N)"
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "wrk failed against $name (exit status $rc)"
  fi
  if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
    log "warning: $name, $conns connections: $(grep -e "Non-2xx" -e "Socket errors" "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  local requests
  requests="$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")"
  if [ -z "$WRK_RPS" ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
    cat "$out" >&2
    die "no requests counted in wrk's output for $name"
  fi
  read -r WRK_US WRK_BUSY < <(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$requests" \
    -v ns="$((w1 - w0))" 'BEGIN { printf "%.2f %.0f\n", t / hz * 1e6 / n, t / hz * 1e11 / ns }')
}

median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# compare BENCH C_PORT C_PID LUA_PORT LUA_PID: both servers already answer.
# Warms each up, then for every connection count runs wrk REPEAT times
# against C and Lua alternately (so that a change in background load hits
# both alike) and records the medians and their ratios in RESULTS.
compare() {
  local bench="$1" c_port="$2" c_pid="$3" lua_port="$4" lua_pid="$5" conns r
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$c_port" 50 "$WARMUP" "$bench-c-warmup" "$c_pid"
    run_wrk "$lua_port" 50 "$WARMUP" "$bench-lua-warmup" "$lua_pid"
  fi
  for conns in $CONNECTIONS; do
    local c_rps=() lua_rps=() c_us=() lua_us=()
    for ((r = 1; r <= REPEAT; r++)); do
      run_wrk "$c_port" "$conns" "$DURATION" "$bench-c-$r" "$c_pid"
      c_rps+=("$WRK_RPS")
      c_us+=("$WRK_US")
      log "$bench, $conns connections, run $r/$REPEAT: C   $WRK_RPS req/s, $WRK_US us CPU/req, CPU ${WRK_BUSY}%"
      run_wrk "$lua_port" "$conns" "$DURATION" "$bench-lua-$r" "$lua_pid"
      lua_rps+=("$WRK_RPS")
      lua_us+=("$WRK_US")
      log "$bench, $conns connections, run $r/$REPEAT: Lua $WRK_RPS req/s, $WRK_US us CPU/req, CPU ${WRK_BUSY}%"
    done
    local c lua cu lu
    c="$(median "${c_rps[@]}")"
    lua="$(median "${lua_rps[@]}")"
    cu="$(median "${c_us[@]}")"
    lu="$(median "${lua_us[@]}")"
    RESULTS+=("$bench|$conns|$c|$lua|$(ratio "$lua" "$c")|$cu|$lu|$(ratio "$cu" "$lu")")
  done
}

# ---- benchmarks: one function each, bench_<name> -------------------------------

# http_hello: a hello-world handler through the high-level Lua API
# (bench/http_hello.lua) against the same server in pure C
# (bench/c_hello_server.c), both on the same mongoose.c and settings. Both
# servers run for the whole benchmark (both pinned to the server CPU; the
# idle one wakes once a second).
bench_http_hello() {
  local c_port="$PORT_BASE" lua_port=$((PORT_BASE + 1)) c_pid lua_pid
  start_server c_hello "$c_port" "$BUILD_DIR/bench_c_hello" "$c_port"
  c_pid="$SERVER_PID"
  start_server lua_hello "$lua_port" scripts/lua-env.sh "$LUAJIT" bench/http_hello.lua "$lua_port"
  lua_pid="$SERVER_PID"
  compare http_hello "$c_port" "$c_pid" "$lua_port" "$lua_pid"
  stop_server "$c_pid"
  stop_server "$lua_pid"
}

# ws_echo: a WebSocket echo server through the high-level Lua API
# (bench/ws_echo.lua) against the same server in pure C (bench/ws_echo_c.c),
# both on the same mongoose.c and settings. The load client is
# bench/ws_load.c (plain sockets and epoll, pinned to the client CPU; Python's
# websockets manages about 60k msg/s here, far below the servers):
# WS_CONNECTIONS connections, each sending WS_WINDOW text messages of WS_SIZE
# bytes in one write and awaiting all their echoes (each one checked) before
# the next window. As http_hello: both servers run throughout, one warm-up
# each, then REPEAT runs of DURATION seconds against C and Lua alternately;
# medians of messages/s and of the server's CPU time per message.

# run_ws_load PORT SECONDS NAME SERVER_PID: sets WS_RATE (echoed messages/s)
# and WS_US (server CPU microseconds per message).
run_ws_load() {
  local port="$1" secs="$2" name="$3" pid="$4"
  local out="$WORK_DIR/ws_load-$name.txt" rc=0 t0 t1 n
  t0="$(cpu_ticks "$pid")"
  timeout $((secs + 30)) taskset -c "$CLIENT_CPU" \
    "$BUILD_DIR/bench_ws_load" -p "$port" -c "$WS_CONNECTIONS" -w "$WS_WINDOW" -s "$WS_SIZE" \
    -d "$secs" -W 0 >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  t1="$(cpu_ticks "$pid")"
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "bench_ws_load failed against $name (exit status $rc)"
  fi
  WS_RATE="$(sed -n 's/.* msg\/s \([0-9]*\)$/\1/p' "$out")"
  n="$(sed -n 's/.* messages \([0-9]*\) .*/\1/p' "$out")"
  if [ -z "$WS_RATE" ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then
    cat "$out" >&2
    die "no messages counted in bench_ws_load's output for $name"
  fi
  WS_US="$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')"
}

bench_ws_echo() {
  local c_port=$((PORT_BASE + 2)) lua_port=$((PORT_BASE + 3)) c_pid lua_pid bin r
  local c_rate=() lua_rate=() c_us=() lua_us=() c lua cu lu
  for bin in bench_c_ws_echo bench_ws_load; do
    [ -x "$BUILD_DIR/$bin" ] || die "$BUILD_DIR/$bin was not built"
  done
  start_server c_ws_echo "$c_port" "$BUILD_DIR/bench_c_ws_echo" "$c_port"
  c_pid="$SERVER_PID"
  start_server lua_ws_echo "$lua_port" scripts/lua-env.sh "$LUAJIT" bench/ws_echo.lua "$lua_port"
  lua_pid="$SERVER_PID"
  if [ "$WARMUP" -gt 0 ]; then
    run_ws_load "$c_port" "$WARMUP" c-warmup "$c_pid"
    run_ws_load "$lua_port" "$WARMUP" lua-warmup "$lua_pid"
  fi
  for ((r = 1; r <= REPEAT; r++)); do
    run_ws_load "$c_port" "$DURATION" "c-$r" "$c_pid"
    c_rate+=("$WS_RATE")
    c_us+=("$WS_US")
    log "ws_echo, run $r/$REPEAT: C   $WS_RATE msg/s, $WS_US us CPU/msg"
    run_ws_load "$lua_port" "$DURATION" "lua-$r" "$lua_pid"
    lua_rate+=("$WS_RATE")
    lua_us+=("$WS_US")
    log "ws_echo, run $r/$REPEAT: Lua $WS_RATE msg/s, $WS_US us CPU/msg"
  done
  stop_server "$c_pid"
  stop_server "$lua_pid"
  c="$(median "${c_rate[@]}")"
  lua="$(median "${lua_rate[@]}")"
  cu="$(median "${c_us[@]}")"
  lu="$(median "${lua_us[@]}")"
  SUMMARY+=("ws echo: C $c msg/s, Lua $lua msg/s, ratio $(ratio "$lua" "$c")" \
    "  ($WS_CONNECTIONS connections, windows of $WS_WINDOW messages of $WS_SIZE bytes, ratio Lua/C;" \
    "   CPU per message: C $cu us, Lua $lu us, ratio $(ratio "$cu" "$lu"))")
}

# ---- https_hello -----------------------------------------------------------------
# http_hello over TLS: the hello-world handler through the high-level Lua API
# with opts.tls (bench/https_hello.lua) against the same server in pure C
# (bench/c_https_hello.c), both on the same mongoose.c, settings and TLS
# library (the build's MGFFI_TLS). wrk speaks https with keep-alive (one TLS
# handshake per connection, then requests on it), so this measures TLS
# record processing plus the HTTP path. A throwaway EC prime256v1 certificate
# is made in WORK_DIR (removed on exit). As http_hello: both servers run
# throughout, warm-up, then CONNECTIONS rounds of REPEAT runs alternately.
bench_https_hello() {
  local c_port=$((PORT_BASE + 8)) lua_port=$((PORT_BASE + 9)) c_pid lua_pid row
  local bench conns c lua r cu lu cr
  [ -x "$BUILD_DIR/bench_c_https_hello" ] ||
    die "$BUILD_DIR/bench_c_https_hello was not built (a build with MGFFI_TLS=none has no TLS)"
  command -v openssl >/dev/null || die "openssl is missing"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK_DIR/bench.key" -out "$WORK_DIR/bench.pem" >/dev/null 2>&1 ||
    die "openssl could not make the test certificate"
  SCHEME=https
  start_server c_https_hello "$c_port" "$BUILD_DIR/bench_c_https_hello" \
    "$WORK_DIR/bench.pem" "$WORK_DIR/bench.key" "$c_port"
  c_pid="$SERVER_PID"
  start_server lua_https_hello "$lua_port" scripts/lua-env.sh "$LUAJIT" bench/https_hello.lua \
    "$WORK_DIR/bench.pem" "$WORK_DIR/bench.key" "$lua_port"
  lua_pid="$SERVER_PID"
  compare https_hello "$c_port" "$c_pid" "$lua_port" "$lua_pid"
  stop_server "$c_pid"
  stop_server "$lua_pid"
  SCHEME=http
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r bench conns c lua r cu lu cr <<<"$row"
    [ "$bench" = https_hello ] || continue
    SUMMARY+=("https hello: C $c req/s, Lua $lua req/s, ratio $r" \
      "  ($conns connections, keep-alive, TLS: $(cache_value MGFFI_TLS); CPU per request: C $cu us, Lua $lu us)")
  done
}

# ---- tcp_echo and udp_echo -------------------------------------------------------
# Echo servers through the high-level Lua API (bench/echo.lua) against the
# same servers in pure C (bench/echo_c.c), both on the same mongoose.c and
# settings, each given tcp or udp. The load
# clients use plain sockets, no Mongoose, pinned to the client CPU:
# bench/tcp_load.c streams TCP_CHUNK-byte writes on TCP_CONNECTIONS
# connections (at most 1 MiB unanswered each) and counts the echoed bytes
# (checked); bench/udp_load.c keeps UDP_WINDOW datagrams of UDP_SIZE bytes
# in flight, one more for each echo (checked). Each server runs alone: C,
# then Lua, REPEAT rounds, medians; the load client warms up for WARMUP
# seconds (unmeasured) on the same connections, then measures DURATION.

# net_bound PROTO PORT: true when something listens on 127.0.0.1:PORT
# (PROTO tcp or udp), read from /proc/net.
net_bound() {
  local hex
  hex="$(printf '0100007F:%04X' "$2")"
  if [ "$1" = tcp ]; then
    awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
  else
    awk -v a="$hex" '$2 == a { found = 1 } END { exit !found }' /proc/net/udp
  fi
}

# start_net_server NAME PROTO PORT COMMAND...: starts COMMAND pinned to the
# server CPU and waits (up to 10 s) until it is bound. Sets SERVER_PID.
start_net_server() {
  local name="$1" proto="$2" port="$3" i
  shift 3
  if net_bound "$proto" "$port"; then
    die "something already uses $proto 127.0.0.1:$port (set PORT_BASE)"
  fi
  taskset -c "$SERVER_CPU" "$@" >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before binding $proto port $port"
    fi
    if net_bound "$proto" "$port"; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not bind $proto 127.0.0.1:$port within 10 s"
}

# run_net_load NAME FIELD COMMAND...: runs a load client pinned to the client
# CPU and sets NET_RATE to the number after FIELD in its one-line report.
run_net_load() {
  local name="$1" field="$2" rc=0
  shift 2
  local out="$WORK_DIR/$name.txt"
  timeout $((WARMUP + DURATION + 30)) taskset -c "$CLIENT_CPU" "$@" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "$name failed (exit status $rc)"
  fi
  NET_RATE="$(awk -v f="$field" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' "$out")"
  [ -n "$NET_RATE" ] || die "no $field in the output of $name: $(cat "$out")"
}

# net_compare BENCH PROTO UNIT C_BIN LUA_SCRIPT C_PORT LUA_PORT LOAD_ARGS...:
# REPEAT rounds of C then Lua, each server alone; adds a line to SUMMARY.
net_compare() {
  local bench="$1" proto="$2" unit="$3" c_bin="$4" lua_script="$5" c_port="$6" lua_port="$7"
  shift 7
  local load="$BUILD_DIR/bench_${proto}_load" c_runs=() lua_runs=() r pid c lua bin
  for bin in "$c_bin" "$load"; do
    [ -x "$bin" ] || die "$bin was not built"
  done
  for ((r = 1; r <= REPEAT; r++)); do
    start_net_server "c_$bench" "$proto" "$c_port" "$c_bin" "$proto" "$c_port"
    pid="$SERVER_PID"
    run_net_load "$bench-c-$r" "$unit" "$load" -p "$c_port" -d "$DURATION" -W "$WARMUP" "$@"
    c_runs+=("$NET_RATE")
    stop_server "$pid"
    start_net_server "lua_$bench" "$proto" "$lua_port" scripts/lua-env.sh "$LUAJIT" "$lua_script" "$proto" "$lua_port"
    pid="$SERVER_PID"
    run_net_load "$bench-lua-$r" "$unit" "$load" -p "$lua_port" -d "$DURATION" -W "$WARMUP" "$@"
    lua_runs+=("$NET_RATE")
    stop_server "$pid"
    log "$bench, run $r/$REPEAT: C ${c_runs[-1]} $unit, Lua ${lua_runs[-1]} $unit"
  done
  c="$(median "${c_runs[@]}")"
  lua="$(median "${lua_runs[@]}")"
  SUMMARY+=("${bench//_/ }: C $c $unit, Lua $lua $unit, ratio $(ratio "$lua" "$c")")
}

# tcp_echo: TCP_CONNECTIONS connections streaming TCP_CHUNK-byte writes.
bench_tcp_echo() {
  net_compare tcp_echo tcp MB/s "$BUILD_DIR/bench_c_echo" bench/echo.lua \
    $((PORT_BASE + 4)) $((PORT_BASE + 5)) -c "$TCP_CONNECTIONS" -s "$TCP_CHUNK"
  SUMMARY+=("  ($TCP_CONNECTIONS connections, $TCP_CHUNK-byte writes, echoed MB/s (10^6 bytes), ratio Lua/C)")
}

# udp_echo: UDP_WINDOW datagrams of UDP_SIZE bytes in flight.
bench_udp_echo() {
  net_compare udp_echo udp dgram/s "$BUILD_DIR/bench_c_echo" bench/echo.lua \
    $((PORT_BASE + 6)) $((PORT_BASE + 7)) -w "$UDP_WINDOW" -s "$UDP_SIZE"
  SUMMARY+=("  ($UDP_WINDOW datagrams of $UDP_SIZE bytes in flight, echoes/s, ratio Lua/C)")
}

# ---- main ----------------------------------------------------------------------

print_results() {
  local row bench conns c lua r cu lu cr
  echo
  echo "req/s: wrk's requests/s (median); us/req: the server's CPU time per request"
  echo "(median); Lua/C: Lua req/s / C req/s; C/Lua CPU: C us/req / Lua us/req."
  echo
  printf '%-12s %6s %10s %10s %6s %9s %11s %6s\n' \
    benchmark conns "C req/s" "Lua req/s" "Lua/C" "C us/req" "Lua us/req" "C/Lua"
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r bench conns c lua r cu lu cr <<<"$row"
    printf '%-12s %6s %10s %10s %6s %9s %11s %6s\n' "$bench" "$conns" "$c" "$lua" "$r" "$cu" "$lu" "$cr"
  done
  echo
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r bench conns c lua r cu lu cr <<<"$row"
    echo "${bench//_/ } (${conns} connections): C $c req/s, Lua $lua req/s, ratio $r" \
      "(CPU per request: C $cu us, Lua $lu us, ratio $cr)"
  done
  for row in "${SUMMARY[@]}"; do
    echo "$row"
  done
}

main() {
  [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds"
  [[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
  [[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive whole number"
  need_tools
  build
  print_setup
  local b
  for b in $BENCHMARKS; do
    declare -F "bench_$b" >/dev/null || die "unknown benchmark: $b"
    log "running $b"
    "bench_$b"
  done
  print_results
}

main "$@"
