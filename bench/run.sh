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
LOG_TAG=bench
INSTALL_WRK=1
CONNECTIONS="${CONNECTIONS:-50 200}"
REPEAT="${REPEAT:-1}"
PORT_BASE="${PORT_BASE:-8101}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

BENCHMARKS="${BENCHMARKS:-http_hello ws_echo tcp_echo udp_echo https_hello}"
TCP_CONNECTIONS="${TCP_CONNECTIONS:-8}"
TCP_CHUNK="${TCP_CHUNK:-65536}"
UDP_WINDOW="${UDP_WINDOW:-50}"
UDP_SIZE="${UDP_SIZE:-64}"
WS_CONNECTIONS="${WS_CONNECTIONS:-50}"
WS_WINDOW="${WS_WINDOW:-16}"
WS_SIZE="${WS_SIZE:-32}"
ROWS=()      # "bench|connections|c_rps|lua_rps|rps_ratio|c_us|lua_us|cpu_ratio"
SUMMARY=()   # result lines of benchmarks outside ROWS' table (ws_echo)
# The two sides of every benchmark: the pure-C server and the Lua one.
SIDE_LABEL[c]="C  "
SIDE_LABEL[lua]="Lua"

print_setup() {
  local sanitize
  sanitize="$(cache_value MGFFI_SANITIZE)"
  print_header "mongoose-ffi benchmarks"
  echo "wrk:      $(wrk -v 2>&1 | head -n1)"
  echo "mongoose: $(sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' "$(cache_value MONGOOSE_HEADER)")"
  echo "build:    $BUILD_DIR ($(cache_value CMAKE_BUILD_TYPE), sanitizers ${sanitize:-OFF})"
  echo "wrk runs: ${DURATION}s each after a ${WARMUP}s warm-up, -t1, connections: $CONNECTIONS," \
    "C and Lua alternately, median of $REPEAT"
  echo "pinning:  servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
  case "$sanitize" in ON | TRUE | 1) log "warning: sanitizers are on in $BUILD_DIR: figures are not representative" ;; esac
}

# start_pair BENCH SCHEME C_PROGRAM LUA_SCRIPT PORT [ARG...]: the C server
# (BUILD_DIR/C_PROGRAM ARG... PORT) as side c and the Lua one (LUA_SCRIPT
# ARG... PORT+1) as side lua, both pinned to the server CPU, both answering
# at SCHEME://127.0.0.1:port/. They run side by side for the whole
# benchmark (the idle one wakes once a second).
start_pair() {
  local bench="$1" scheme="$2" program="$3" script="$4" port="$5"
  shift 5
  serve c "c_$bench" "$scheme://127.0.0.1:$port/" "$BUILD_DIR/$program" "$@" "$port"
  serve lua "lua_$bench" "$scheme://127.0.0.1:$((port + 1))/" \
    scripts/lua-env.sh "$LUAJIT" "$script" "$@" $((port + 1))
}

# add_row BENCH c lua: the REPORT of compare: a row of ROWS, the medians of
# C and Lua and their ratios.
add_row() {
  local c cu lua lu
  read -r c cu <<<"${MEDIAN[c]}"
  read -r lua lu <<<"${MEDIAN[lua]}"
  ROWS+=("$1|$CONNS|$c|$lua|$(ratio "$lua" "$c")|$cu|$lu|$(ratio "$cu" "$lu")")
}

# ---- benchmarks: one function each, bench_<name> -------------------------------

# http_hello: a hello-world handler through the high-level Lua API
# (bench/http_hello.lua) against the same server in pure C
# (bench/c_hello_server.c), both on the same mongoose.c and settings. Both
# servers run for the whole benchmark (start_pair). One wrk warm-up each,
# then for every connection count REPEAT runs against C and Lua alternately
# (so that a change in background load hits both alike); the medians and
# their ratios go to ROWS (compare, in common.sh).
bench_http_hello() {
  start_pair http_hello http bench_c_hello bench/http_hello.lua "$PORT_BASE"
  compare add_row http_hello c lua
  stop_sides c lua
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

# sample_ws SIDE NAME [SECONDS]: a MEASURE of rounds: bench_ws_load against
# SIDE for SECONDS (default DURATION). Figures: echoed messages/s, the
# server's CPU microseconds per message.
sample_ws() {
  local out="$WORK_DIR/ws_load-$2.txt" secs="${3:-$DURATION}" pid="${SIDE_PID[$1]}" t0 ticks rate n us
  t0="$(cpu_ticks "$pid")"
  run_client "bench_ws_load against $2" $((secs + 30)) "$out" "$BUILD_DIR/bench_ws_load" \
    -p "$(url_port "${SIDE_URL[$1]}")" -c "$WS_CONNECTIONS" -w "$WS_WINDOW" -s "$WS_SIZE" -d "$secs" -W 0
  ticks=$(($(cpu_ticks "$pid") - t0))
  rate="$(sed -n 's/.* msg\/s \([0-9]*\)$/\1/p' "$out")"
  n="$(sed -n 's/.* messages \([0-9]*\) .*/\1/p' "$out")"
  if [ -z "$rate" ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then
    cat "$out" >&2
    die "no messages counted in bench_ws_load's output for $2"
  fi
  us="$(us_per "$ticks" "$n" 3)"
  SAMPLE="$rate $us"
  SAMPLE_TEXT="$rate msg/s, $us us CPU/msg"
}

bench_ws_echo() {
  local c cu lua lu
  need_build bench_c_ws_echo bench_ws_load
  start_pair ws_echo http bench_c_ws_echo bench/ws_echo.lua $((PORT_BASE + 2))
  warm_up sample_ws ws_echo c lua
  rounds sample_ws ws_echo "ws_echo, run" c lua
  stop_sides c lua
  read -r c cu <<<"${MEDIAN[c]}"
  read -r lua lu <<<"${MEDIAN[lua]}"
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

# add_https_row BENCH c lua: add_row, and the row's line in SUMMARY.
add_https_row() {
  local bench conns c lua r cu lu cr
  add_row "$@"
  IFS='|' read -r bench conns c lua r cu lu cr <<<"${ROWS[-1]}"
  SUMMARY+=("https hello: C $c req/s, Lua $lua req/s, ratio $r" \
    "  ($conns connections, keep-alive, TLS: $(cache_value MGFFI_TLS); CPU per request: C $cu us, Lua $lu us)")
}

bench_https_hello() {
  [ -x "$BUILD_DIR/bench_c_https_hello" ] ||
    die "$BUILD_DIR/bench_c_https_hello was not built (a build with MGFFI_TLS=none has no TLS)"
  command -v openssl >/dev/null || die "openssl is missing"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK_DIR/bench.key" -out "$WORK_DIR/bench.pem" >/dev/null 2>&1 ||
    die "openssl could not make the test certificate"
  start_pair https_hello https bench_c_https_hello bench/https_hello.lua $((PORT_BASE + 8)) \
    "$WORK_DIR/bench.pem" "$WORK_DIR/bench.key"
  compare add_https_row https_hello c lua
  stop_sides c lua
}

# ---- tcp_echo and udp_echo -------------------------------------------------------
# Echo servers through the high-level Lua API (bench/echo.lua) against the
# same servers in pure C (bench/echo_c.c), both on the same mongoose.c and
# settings, each given tcp or udp. The load clients use plain sockets, no
# Mongoose, pinned to the client CPU: bench/tcp_load.c streams
# TCP_CHUNK-byte writes on TCP_CONNECTIONS connections (at most 1 MiB
# unanswered each) and counts the echoed bytes (checked); bench/udp_load.c
# keeps UDP_WINDOW datagrams of UDP_SIZE bytes in flight, one more for each
# echo (checked). Each server runs alone: C, then Lua, REPEAT rounds,
# medians; the load client warms up for WARMUP seconds (unmeasured) on the
# same connections, then measures DURATION.

# sample_net SIDE NAME: a MEASURE of rounds: the NET_PROTO echo server of
# SIDE alone, started on NET_PORT[SIDE], loaded by bench_NET_PROTO_load
# (with NET_ARGS), stopped. Figure: the number after NET_UNIT in the load's
# one-line report.
declare -A NET_PORT
sample_net() {
  local side="$1" name="$2" port="${NET_PORT[$1]}" out="$WORK_DIR/$2.txt"
  local probe="$NET_PROTO://127.0.0.1:$port"
  if [ "$side" = c ]; then
    start_server "c_$NET_BENCH" "$SERVER_CPU" "$probe" "$BUILD_DIR/bench_c_echo" "$NET_PROTO" "$port"
  else
    start_server "lua_$NET_BENCH" "$SERVER_CPU" "$probe" \
      scripts/lua-env.sh "$LUAJIT" bench/echo.lua "$NET_PROTO" "$port"
  fi
  run_client "$name" $((WARMUP + DURATION + 30)) "$out" "$BUILD_DIR/bench_${NET_PROTO}_load" \
    -p "$port" -d "$DURATION" -W "$WARMUP" "${NET_ARGS[@]}"
  stop_server "$SERVER_PID"
  SAMPLE="$(awk -v f="$NET_UNIT" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' "$out")"
  [ -n "$SAMPLE" ] || die "no $NET_UNIT in the output of $name: $(cat "$out")"
  SAMPLE_TEXT="$SAMPLE $NET_UNIT"
}

# net_compare BENCH PROTO UNIT PORT LOAD_ARG...: REPEAT rounds of C then Lua
# (on PORT and PORT+1), each server alone; adds a line to SUMMARY.
net_compare() {
  local c lua
  NET_BENCH="$1" NET_PROTO="$2" NET_UNIT="$3"
  NET_PORT[c]="$4"
  NET_PORT[lua]=$(($4 + 1))
  shift 4
  NET_ARGS=("$@")
  need_build bench_c_echo "bench_${NET_PROTO}_load"
  rounds sample_net "$NET_BENCH" "$NET_BENCH, run" c lua
  c="${MEDIAN[c]}"
  lua="${MEDIAN[lua]}"
  SUMMARY+=("${NET_BENCH//_/ }: C $c $NET_UNIT, Lua $lua $NET_UNIT, ratio $(ratio "$lua" "$c")")
}

# tcp_echo: TCP_CONNECTIONS connections streaming TCP_CHUNK-byte writes.
bench_tcp_echo() {
  net_compare tcp_echo tcp MB/s $((PORT_BASE + 4)) -c "$TCP_CONNECTIONS" -s "$TCP_CHUNK"
  SUMMARY+=("  ($TCP_CONNECTIONS connections, $TCP_CHUNK-byte writes, echoed MB/s (10^6 bytes), ratio Lua/C)")
}

# udp_echo: UDP_WINDOW datagrams of UDP_SIZE bytes in flight.
bench_udp_echo() {
  net_compare udp_echo udp dgram/s $((PORT_BASE + 6)) -w "$UDP_WINDOW" -s "$UDP_SIZE"
  SUMMARY+=("  ($UDP_WINDOW datagrams of $UDP_SIZE bytes in flight, echoes/s, ratio Lua/C)")
}

# ---- main ----------------------------------------------------------------------

print_tables() {
  local row bench conns c lua r cu lu cr
  echo
  echo "req/s: wrk's requests/s (median); us/req: the server's CPU time per request"
  echo "(median); Lua/C: Lua req/s / C req/s; C/Lua CPU: C us/req / Lua us/req."
  echo
  printf '%-12s %6s %10s %10s %6s %9s %11s %6s\n' \
    benchmark conns "C req/s" "Lua req/s" "Lua/C" "C us/req" "Lua us/req" "C/Lua"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r bench conns c lua r cu lu cr <<<"$row"
    printf '%-12s %6s %10s %10s %6s %9s %11s %6s\n' "$bench" "$conns" "$c" "$lua" "$r" "$cu" "$lu" "$cr"
  done
  echo
  for row in "${ROWS[@]}"; do
    IFS='|' read -r bench conns c lua r cu lu cr <<<"$row"
    echo "${bench//_/ } (${conns} connections): C $c req/s, Lua $lua req/s, ratio $r" \
      "(CPU per request: C $cu us, Lua $lu us, ratio $cr)"
  done
  for row in "${SUMMARY[@]}"; do
    echo "$row"
  done
}

main() {
  local b
  need_whole 1 DURATION REPEAT
  need_whole 0 WARMUP
  need_tools wrk
  build bench_c_hello
  print_setup
  for b in $BENCHMARKS; do
    declare -F "bench_$b" >/dev/null || die "unknown benchmark: $b"
    log "running $b"
    "bench_$b"
  done
  print_tables
}

main "$@"
