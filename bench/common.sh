# shellcheck shell=bash
# Shared by the bench/*.sh scripts (sourced, not run): strict mode and the
# checkout as the working folder; the common settings; log and die; cleanup
# of everything started; tool and build checks; servers pinned to CPU 0
# (started, waited for, stopped) and load clients pinned to CPU 1; wrk with
# the server's CPU time per request from /proc; rounds that alternate
# between the servers compared, with medians and ratios; the setup header;
# the nginx side (Debian's nginx-light + libnginx-mod-http-lua, installed on
# demand) and OpenResty's Lua libraries.
#
# A script sets, before sourcing it, the defaults it wants other than these
# (DURATION=10, WARMUP=2, CONNECTIONS=50, REPEAT=3, SIDES="mongoose nginx",
# BUILD_DIR=build-bench, NO_BUILD=0, PORT_BASE=8301, LUAJIT=luajit) and:
#   LOG_TAG      the prefix of its log lines on stderr and of its work
#                folder's name (default bench)
#   BENCH_NAME   its name in print_setup's title
#   INSTALL_WRK  1: need_tools installs a missing wrk with apt-get as root
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-50}"
REPEAT="${REPEAT:-3}"
SIDES="${SIDES:-mongoose nginx}"
BUILD_DIR="${BUILD_DIR:-build-bench}"
NO_BUILD="${NO_BUILD:-0}"
PORT_BASE="${PORT_BASE:-8301}"
LUAJIT="${LUAJIT:-luajit}"
LOG_TAG="${LOG_TAG:-bench}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-$LOG_TAG.XXXXXX")"
PIDS=()      # every process started in the background: stopped on exit
CLIENT_PID=  # the load client running now
CLK_TCK="$(getconf CLK_TCK)"
LIBS_DIR="$BUILD_DIR/openresty-libs/usr/share/lua/5.1"

log() { echo "$LOG_TAG: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

cleanup() {
  local pid i
  if [ -n "$CLIENT_PID" ]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
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

# in_list WORD LIST: true when WORD is one of the words of LIST.
in_list() {
  case " $2 " in *" $1 "*) return 0 ;; esac
  return 1
}

has_side() { in_list "$1" "$SIDES"; }

# need_whole MIN NAME...: dies unless each variable NAME holds a whole
# number of at least MIN.
need_whole() {
  local min="$1" name
  shift
  for name in "$@"; do
    if ! [[ "${!name}" =~ ^[0-9]+$ ]] || [ "${!name}" -lt "$min" ]; then
      die "$name must be a whole number of at least $min (not '${!name}')"
    fi
  done
}

# ---- tools and the build -------------------------------------------------------

# need_tools [TOOL...]: dies unless curl, taskset, timeout, LuaJIT and each
# TOOL are on PATH and the machine has the 2 CPUs that the pinning needs.
# With INSTALL_WRK=1, a missing wrk is installed with apt-get (as root).
need_tools() {
  local tool
  for tool in curl taskset timeout "$LUAJIT" "$@"; do
    command -v "$tool" >/dev/null && continue
    if [ "$tool" = wrk ] && [ "${INSTALL_WRK:-0}" = 1 ] && [ "$(id -u)" -eq 0 ] &&
      command -v apt-get >/dev/null; then
      log "installing wrk"
      timeout 300 apt-get install -y -qq wrk >/dev/null || die "apt-get install wrk failed"
      continue
    fi
    die "$tool is missing (Debian: scripts/setup-deps.sh --with-bench-tools installs wrk and python3)"
  done
  [ "$(nproc)" -ge 2 ] ||
    die "needs 2 CPUs (servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU); nproc is $(nproc)"
}

# shellcheck disable=SC2120 # (PROGRAM... is optional)
# build [PROGRAM...]: builds BUILD_DIR with scripts/build.sh, the benchmark
# programs included (BUILD_TARGET=NAME: that target alone), unless
# NO_BUILD=1; then need_build PROGRAM...
build() {
  if [ "$NO_BUILD" = 1 ]; then
    log "NO_BUILD=1: using the existing build in $BUILD_DIR"
  else
    log "building ${BUILD_TARGET:-everything} into $BUILD_DIR"
    BUILD_DIR="$BUILD_DIR" BUILD_TARGET="${BUILD_TARGET:-}" bash scripts/build.sh \
      -DMGFFI_BUILD_BENCH=ON >/dev/null ||
      die "the build failed (see above)"
  fi
  need_build "$@"
}

# need_build [PROGRAM...]: dies unless BUILD_DIR holds mongoose_ffi.so and
# each PROGRAM.
need_build() {
  local program
  [ -f "$BUILD_DIR/mongoose_ffi.so" ] ||
    die "$BUILD_DIR/mongoose_ffi.so was not built (bash scripts/build.sh, or set BUILD_DIR)"
  for program in "$@"; do
    [ -x "$BUILD_DIR/$program" ] || die "$BUILD_DIR/$program was not built"
  done
}

# cache_value NAME: NAME's value in BUILD_DIR's CMake cache.
cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt"
}

# ---- servers ---------------------------------------------------------------------

# url_port URL: the port of URL (scheme://host:port[/path]).
url_port() {
  local rest="${1##*:}"
  echo "${rest%%/*}"
}

# answers URL: true when an HTTP or HTTPS server answers 200 there (the
# certificate is not checked).
answers() {
  [ "$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null)" = 200 ]
}

# net_bound PROTO PORT: true when something has PORT bound on 127.0.0.1 or
# on every address, listening for PROTO tcp, for udp at all (/proc/net).
net_bound() {
  local listening=0
  [ "$1" = tcp ] && listening=1
  awk -v port=":$(printf '%04X' "$2")" -v listening="$listening" '
    ($2 == "0100007F" port || $2 == "00000000" port) && (!listening || $4 == "0A") { found = 1 }
    END { exit !found }' "/proc/net/$1"
}

# ready PROBE: true when PROBE is ready: an http:// or https:// URL answers
# 200, tcp://127.0.0.1:PORT listens, udp://127.0.0.1:PORT is bound.
ready() {
  case "$1" in
    tcp://* | udp://*) net_bound "${1%%:*}" "$(url_port "$1")" ;;
    *) answers "$1" ;;
  esac
}

# start_server NAME CPU PROBE COMMAND...: starts COMMAND pinned to CPU (its
# output in WORK_DIR/NAME.log) and waits up to 10 s until PROBE is ready;
# refuses when something has PROBE's port already. Sets SERVER_PID.
start_server() {
  local name="$1" cpu="$2" probe="$3" proto=tcp port i
  shift 3
  port="$(url_port "$probe")"
  case "$probe" in udp://*) proto=udp ;; esac
  if net_bound "$proto" "$port"; then
    die "something already has $proto port 127.0.0.1:$port (set PORT_BASE)"
  fi
  taskset -c "$cpu" "$@" >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before it was ready at $probe"
    fi
    ready "$probe" && return 0
    sleep 0.1
  done
  cat "$WORK_DIR/$name.log" >&2 || true
  die "$name was not ready at $probe within 10 s"
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

# The servers compared, by side (a word of the script's choosing): the URL
# (or probe) each answers at, its pid and the label of its log lines.
declare -A SIDE_URL SIDE_PID SIDE_LABEL

# serve SIDE NAME PROBE COMMAND...: start_server NAME on the server CPU,
# recorded as SIDE (SIDE_URL is PROBE).
serve() {
  local side="$1" name="$2" probe="$3"
  shift 3
  start_server "$name" "$SERVER_CPU" "$probe" "$@"
  SIDE_URL[$side]="$probe"
  SIDE_PID[$side]="$SERVER_PID"
}

# stop_sides SIDE...: stops the servers of SIDE...
stop_sides() {
  local side
  for side in "$@"; do
    stop_server "${SIDE_PID[$side]}"
  done
}

# cpu_ticks PID: CPU time (user + system, in clock ticks) used so far by PID
# and its children now running (nginx's worker).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$total"
}

rss_kb() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# ---- load clients ----------------------------------------------------------------

# run_client WHAT SECONDS OUT COMMAND...: runs COMMAND pinned to the client
# CPU, bounded by SECONDS (timeout), its output in OUT, as a background job
# so that a signal stops the script (and the client, from cleanup) at once.
# Dies (with OUT) when it fails: "WHAT failed".
run_client() {
  local what="$1" secs="$2" out="$3" rc=0
  shift 3
  timeout "$secs" taskset -c "$CLIENT_CPU" "$@" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "$what failed (exit status $rc)"
  fi
}

# us_per TICKS COUNT DECIMALS: microseconds of CPU time (TICKS clock ticks)
# per one of COUNT.
us_per() {
  awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" -v d="$3" 'BEGIN { printf "%." d "f", t / hz * 1e6 / n }'
}

# run_wrk URL CONNECTIONS SECONDS NAME PID [WRK_ARG...]: one wrk -t1 run
# against URL, wrk's report in WORK_DIR/wrk-NAME.txt. Sets WRK_RPS
# (requests/s), WRK_US (the server's CPU microseconds per request, user +
# system from /proc: unlike requests/s it hardly moves when other processes
# compete for the CPU), WRK_BUSY (the server's CPU use, % of one core),
# WRK_REQUESTS, WRK_TICKS (the server's CPU time) and WRK_XFER (wrk's
# Transfer/sec); warns about non-2xx answers and socket errors.
run_wrk() {
  local url="$1" conns="$2" secs="$3" name="$4" pid="$5" out="$WORK_DIR/wrk-$4.txt" t0 w0 ns
  shift 5
  t0="$(cpu_ticks "$pid")"
  w0="$(date +%s%N)"
  run_client "wrk against $name" $((secs + 30)) "$out" wrk -t1 -c"$conns" -d"${secs}s" "$@" "$url"
  WRK_TICKS=$(($(cpu_ticks "$pid") - t0))
  ns=$(($(date +%s%N) - w0))
  if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
    log "warning: $name: $(grep -e "Non-2xx" -e "Socket errors" "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  # shellcheck disable=SC2034 # for web.sh
  WRK_XFER="$(awk '/^Transfer\/sec:/ { print $2 }' "$out")"
  WRK_REQUESTS="$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")"
  if [ -z "$WRK_RPS" ] || [ -z "$WRK_REQUESTS" ] || [ "$WRK_REQUESTS" -eq 0 ]; then
    cat "$out" >&2
    die "no requests counted in wrk's output for $name"
  fi
  WRK_US="$(us_per "$WRK_TICKS" "$WRK_REQUESTS" 2)"
  WRK_BUSY="$(awk -v t="$WRK_TICKS" -v hz="$CLK_TCK" -v ns="$ns" 'BEGIN { printf "%.0f", t / hz * 1e11 / ns }')"
}

# ---- rounds, medians, ratios -----------------------------------------------------

# medians: the median of each column of the lines on stdin (the lower one
# of an even count), as one line.
medians() {
  awk 'NF {
      n++
      for (i = 1; i <= NF; i++) v[i, n] = $i
      if (NF > cols) cols = NF
    }
    END {
      for (i = 1; i <= cols; i++) {
        for (a = 2; a <= n; a++)
          for (b = a; b > 1 && v[i, b - 1] + 0 > v[i, b] + 0; b--) {
            t = v[i, b]; v[i, b] = v[i, b - 1]; v[i, b - 1] = t
          }
        printf "%s%s", (i > 1 ? " " : ""), v[i, int((n + 1) / 2)]
      }
      print ""
    }'
}

median() { printf '%s\n' "$@" | medians; }

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# rounds MEASURE NAME TITLE SIDE...: REPEAT rounds; in each, "MEASURE SIDE
# NAME-SIDE-ROUND" runs against every SIDE in turn (so that a change in
# background load hits them alike), sets SAMPLE (its figures, as words) and
# SAMPLE_TEXT, logged as "TITLE ROUND/REPEAT: LABEL SAMPLE_TEXT". Then
# MEDIAN[SIDE] holds the median of each figure over the rounds, in order.
# ROUND is the round number during the rounds.
declare -A MEDIAN
rounds() {
  local measure="$1" name="$2" title="$3" side
  local -A samples=()
  shift 3
  for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
    for side in "$@"; do
      "$measure" "$side" "$name-$side-$ROUND"
      samples[$side]+="$SAMPLE"$'\n'
      log "$title $ROUND/$REPEAT: ${SIDE_LABEL[$side]:-$side} $SAMPLE_TEXT"
    done
  done
  for side in "$@"; do
    MEDIAN[$side]="$(medians <<<"${samples[$side]}")"
  done
}

# warm_up MEASURE NAME SIDE...: "MEASURE SIDE NAME-SIDE-warmup WARMUP" for
# every SIDE (nothing with WARMUP=0): runs that are not counted.
warm_up() {
  local measure="$1" name="$2" side
  shift 2
  [ "$WARMUP" -gt 0 ] || return 0
  for side in "$@"; do
    "$measure" "$side" "$name-$side-warmup" "$WARMUP"
  done
}

# sample_wrk SIDE NAME [SECONDS]: a MEASURE of rounds: run_wrk with CONNS
# connections against SIDE_URL[SIDE] for SECONDS (default DURATION).
# Figures: requests/s, server CPU us per request.
sample_wrk() {
  run_wrk "${SIDE_URL[$1]}" "$CONNS" "${3:-$DURATION}" "$2" "${SIDE_PID[$1]}"
  SAMPLE="$WRK_RPS $WRK_US"
  SAMPLE_TEXT="$WRK_RPS req/s, $WRK_US us CPU/req, CPU ${WRK_BUSY}%"
}

# compare REPORT NAME SIDE...: the servers of SIDE... answer already. One
# warm-up each (50 connections), then for each of CONNECTIONS (CONNS)
# rounds of sample_wrk, after which REPORT NAME SIDE... runs with MEDIAN
# set ("req/s us/req" of each side).
compare() {
  local report="$1" name="$2"
  shift 2
  CONNS=50
  warm_up sample_wrk "$name" "$@"
  for CONNS in $CONNECTIONS; do
    rounds sample_wrk "$name-c$CONNS" "$name, $CONNS connections, run" "$@"
    "$report" "$name" "$@"
  done
}

# ---- output ------------------------------------------------------------------------

# print_header TITLE [LUAJIT_EXTRA]: the first lines of a result: TITLE,
# the date, the machine, LuaJIT's version (and LUAJIT_EXTRA after it).
print_header() {
  echo "== $1"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "kernel:   $(uname -sr)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1)${2:-}"
}

# print_setup, add_result and print_results: the output of the scripts
# against nginx (redis.sh, proxy.sh).
print_setup() {
  print_header "mongoose-ffi $BENCH_NAME benchmark"
  if has_side nginx; then
    echo "nginx:    $(nginx -v 2>&1 | head -n1)"
  fi
  echo "sides:    $SIDES; wrk -t1, ${DURATION}s runs after ${WARMUP}s warm-ups, median of $REPEAT"
  echo "pinning:  servers under test on CPU $SERVER_CPU; wrk and the shared back end on CPU $CLIENT_CPU"
}

# add_result NAME SIDE...: compare's REPORT: a line of RESULTS with each
# side's medians and, with both mongoose and nginx, their ratios.
RESULTS=()
add_result() {
  local name="$1" side line rps us m_rps m_us n_rps n_us
  shift
  line="$name, $CONNS connections:"
  for side in "$@"; do
    read -r rps us <<<"${MEDIAN[$side]}"
    line+=" $side $rps req/s ($us us CPU/req);"
  done
  if has_side mongoose && has_side nginx; then
    read -r m_rps m_us <<<"${MEDIAN[mongoose]}"
    read -r n_rps n_us <<<"${MEDIAN[nginx]}"
    line+=" ratio mongoose/nginx: req/s $(ratio "$m_rps" "$n_rps"),"
    line+=" CPU per request (nginx/mongoose) $(ratio "$n_us" "$m_us")"
  fi
  RESULTS+=("$line")
}

print_results() {
  echo
  printf '%s\n' "${RESULTS[@]}"
}

# against_nginx NAME LUA [PROGRAM...]: the main of redis.sh and proxy.sh.
# The tools (nginx too, with the Lua module when LUA is 1, for side nginx),
# the build (with PROGRAM...), print_setup; then the script's start_backend,
# start_mongoose and start_nginx (for the sides of SIDES) with the ports
# BACKEND_PORT (PORT_BASE + 9, on the client CPU), MG_PORT (PORT_BASE) and
# NGINX_PORT (PORT_BASE + 1); compare NAME; print_results.
against_nginx() {
  local name="$1" lua="$2"
  shift 2
  # shellcheck disable=SC2034 # for the script's start_* functions
  MG_PORT="$PORT_BASE" NGINX_PORT=$((PORT_BASE + 1)) BACKEND_PORT=$((PORT_BASE + 9))
  if has_side nginx; then need_nginx "$lua"; fi # first: it may bring luajit2
  need_tools wrk
  build "$@"
  print_setup
  start_backend
  if has_side mongoose; then start_mongoose; fi
  if has_side nginx; then start_nginx; fi
  # shellcheck disable=SC2086 # a side a word
  compare add_result "$name" $SIDES
  print_results
}

# ---- nginx and OpenResty's libraries -----------------------------------------------

# need_openresty_lib PACKAGE FILE: Debian's PACKAGE (one of OpenResty's Lua
# libraries, lua-nginx-*) unpacked (not installed) under the build folder,
# where both sides load it from, unless LIBS_DIR/FILE is there already.
need_openresty_lib() {
  [ -f "$LIBS_DIR/$2" ] && return 0
  local debs
  debs="$(mktemp -d)"
  (cd "$debs" && apt-get download -qq "$1" >/dev/null 2>&1) ||
    die "apt-get download $1 failed (apt-get update?)"
  mkdir -p "$BUILD_DIR/openresty-libs"
  dpkg-deb -x "$debs/$1"_*.deb "$BUILD_DIR/openresty-libs"
  rm -rf "$debs"
}

# need_nginx LUA: nginx, with the Lua module when LUA is 1. Installing
# libnginx-mod-http-lua replaces Debian's luajit with luajit2 (a
# dependency): fine for a benchmark machine, not for a shared one.
need_nginx() {
  local want_lua="$1" pkgs=()
  command -v nginx >/dev/null || pkgs+=(nginx-light)
  if [ "$want_lua" = 1 ] && [ ! -f /usr/lib/nginx/modules/ngx_http_lua_module.so ]; then
    pkgs+=(libnginx-mod-http-lua)
  fi
  # The module takes luajit's place with libluajit2, which brings no
  # interpreter: luajit2 provides /usr/bin/luajit for the Lua sides.
  if [ "$want_lua" = 1 ] && { [ "${#pkgs[@]}" -gt 0 ] || ! command -v luajit >/dev/null; }; then
    pkgs+=(luajit2)
  fi
  [ "${#pkgs[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "nginx side: apt-get install ${pkgs[*]} (as root), or SIDES=mongoose"
  log "installing ${pkgs[*]} (this replaces luajit with luajit2)"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
    "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
}

# The load_module lines of the Lua module (and NDK, its dependency).
nginx_lua_modules() {
  local m
  for m in ndk_http_module ngx_http_lua_module; do
    if [ -f "/usr/lib/nginx/modules/$m.so" ]; then
      echo "load_module /usr/lib/nginx/modules/$m.so;"
    fi
  done
}

# serve_nginx SIDE PORT LUA CONF [DIR]: nginx as SIDE, answering at
# http://127.0.0.1:PORT/: one process in the foreground (master_process off,
# one worker), the Lua module loaded with LUA=1, its pid file in
# WORK_DIR/DIR (default nginx; logs belong in WORK_DIR/DIR/logs), and CONF:
# the rest of the config (error_log, events, http).
serve_nginx() {
  local side="$1" port="$2" dir="$WORK_DIR/${5:-nginx}"
  mkdir -p "$dir/logs"
  {
    if [ "$3" = 1 ]; then nginx_lua_modules; fi
    echo "worker_processes 1;"
    echo "master_process off;"
    echo "daemon off;"
    echo "pid $dir/nginx.pid;"
    echo "$4"
  } >"$dir/nginx.conf"
  serve "$side" "${5:-nginx}" "http://127.0.0.1:$port/" nginx -p "$dir" -c "$dir/nginx.conf"
}
