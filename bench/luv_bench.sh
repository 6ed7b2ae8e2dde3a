#!/usr/bin/env bash
# Benchmarks of mongoose.luv, a manager running inside a libuv loop (see
# bench/README.md):
#   (a) CPU used by an idle attached server (a listener, no traffic), in
#       percent of one core, for the epoll mode (goal: under 1%), the
#       interval mode at 1 ms and 10 ms, and mgr:run() for reference;
#   (b) requests/s of the attached server (uv.run) against the same server
#       on the manager's own loop (mgr:run()), both driven by wrk in the same
#       run, printed as a ratio.
#
#   bash bench/luv_bench.sh
#   IDLE_SECONDS=5 DURATION=10 CONNECTIONS="50 200" REPEAT=3 bash bench/luv_bench.sh
#
# Environment:
#   IDLE_SECONDS  seconds of each idle measurement (default 5)
#   DURATION      seconds of each measured wrk run (default 10)
#   WARMUP        seconds of an unmeasured wrk run per server (default 2)
#   CONNECTIONS   wrk connection counts, one round each (default "50")
#   REPEAT        wrk runs per server and round, alternately; the median counts (default 3)
#   BUILD_DIR     build folder (default build-luv-bench; only mongoose_ffi is built)
#   NO_BUILD      1: use what BUILD_DIR holds (default 0)
#   PORT_BASE     first TCP port used on 127.0.0.1 (default 18241)
#   LUAJIT        LuaJIT binary (default luajit)
#
# Servers run pinned to CPU 0 and wrk to CPU 1 (taskset); all traffic goes to
# 127.0.0.1. Everything started here is stopped on exit, also on errors.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

IDLE_SECONDS="${IDLE_SECONDS:-5}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-50}"
REPEAT="${REPEAT:-3}"
BUILD_DIR="${BUILD_DIR:-build-luv-bench}"
NO_BUILD="${NO_BUILD:-0}"
PORT_BASE="${PORT_BASE:-18241}"
LUAJIT="${LUAJIT:-luajit}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-luv-bench.XXXXXX")"
SERVER_PIDS=()
WRK_PID=
CLK_TCK="$(getconf CLK_TCK)"

log() { echo "luv-bench: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

cleanup() {
  local pid i
  if [ -n "$WRK_PID" ]; then
    kill -TERM "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
  fi
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
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

need_tools() {
  local tool
  for tool in wrk curl taskset timeout awk "$LUAJIT"; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: scripts/setup-deps.sh --with-bench-tools)"
  done
  "$LUAJIT" -e 'require("luv")' 2>/dev/null || die "require(\"luv\") fails under $LUAJIT (Debian: apt-get install lua-luv)"
  [ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
}

build() {
  if [ "$NO_BUILD" = 1 ]; then
    log "NO_BUILD=1: using $BUILD_DIR"
  else
    log "building mongoose_ffi into $BUILD_DIR (RelWithDebInfo)"
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || die "cmake configure failed"
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target mongoose_ffi >/dev/null || die "the build failed"
  fi
  [ -f "$BUILD_DIR/mongoose_ffi.so" ] || die "$BUILD_DIR/mongoose_ffi.so was not built"
}

answers() {
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null
}

# start_server NAME PORT MODE [MS]: starts bench/luv_hello.lua pinned to the
# server CPU, waits until it answers. Sets SERVER_PID.
start_server() {
  local name="$1" port="$2"
  shift 2
  answers "$port" && die "something already answers on 127.0.0.1:$port (set PORT_BASE)"
  taskset -c "$SERVER_CPU" scripts/lua-env.sh "$LUAJIT" bench/luv_hello.lua "$port" "$@" \
    >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before answering"
    fi
    answers "$port" && return 0
    sleep 0.1
  done
  die "$name did not answer on 127.0.0.1:$port within 10 s"
}

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

cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# idle NAME PORT MODE [MS]: CPU use of an idle server over IDLE_SECONDS, in
# percent of one core. Prints a result line; sets IDLE_PCT.
idle() {
  local name="$1" port="$2" pid t0 t1 w0 w1
  shift 2
  start_server "$name" "$port" "$@"
  pid="$SERVER_PID"
  sleep 1 # let the start-up and the probe connection settle
  t0="$(cpu_ticks "$pid")"
  w0="$(date +%s%N)"
  sleep "$IDLE_SECONDS"
  t1="$(cpu_ticks "$pid")"
  w1="$(date +%s%N)"
  stop_server "$pid"
  IDLE_PCT="$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v ns="$((w1 - w0))" \
    'BEGIN { printf "%.2f", t / hz * 1e11 / ns }')"
  printf '  %-26s %4d ticks in %5.2f s  = %6s%% of one core\n' "$name" "$((t1 - t0))" \
    "$(awk -v ns="$((w1 - w0))" 'BEGIN { printf "%.2f", ns / 1e9 }')" "$IDLE_PCT"
}

# run_wrk PORT CONNECTIONS SECONDS NAME SERVER_PID: sets WRK_RPS, and WRK_US
# to the server's CPU time per request in microseconds (user + system, from
# /proc; it moves much less than requests/s when other processes compete).
run_wrk() {
  local port="$1" conns="$2" secs="$3" name="$4" pid="$5" rc=0 t0 t1
  local out="$WORK_DIR/wrk-$name.txt"
  t0="$(cpu_ticks "$pid")"
  timeout $((secs + 30)) taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  t1="$(cpu_ticks "$pid")"
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "wrk failed against $name (exit status $rc)"
  fi
  if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
    log "warning: $name: $(grep -e "Non-2xx" -e "Socket errors" "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  local requests
  requests="$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")"
  if [ -z "$WRK_RPS" ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
    cat "$out" >&2
    die "no requests counted in wrk's output for $name"
  fi
  WRK_US="$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

main() {
  [[ "$IDLE_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "IDLE_SECONDS must be a whole number of seconds"
  [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds"
  [[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
  [[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive whole number"
  need_tools
  build
  echo "== mongoose.luv benchmarks"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "kernel:   $(uname -sr)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1), luv $("$LUAJIT" -e 'io.write(require("luv").version_string())')"
  echo "wrk:      $(wrk -v 2>&1 | head -n1)"
  echo "pinning:  server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
  echo

  echo "(a) idle server (one listener, no traffic), ${IDLE_SECONDS} s each:"
  idle "luv, epoll mode" "$PORT_BASE" luv
  local epoll_pct="$IDLE_PCT"
  idle "luv, interval mode 10 ms" $((PORT_BASE + 1)) interval 10
  idle "luv, interval mode 1 ms" $((PORT_BASE + 2)) interval 1
  idle "mgr:run() (reference)" $((PORT_BASE + 3)) run
  if awk -v p="$epoll_pct" 'BEGIN { exit !(p < 1) }'; then
    echo "  epoll mode idle: ${epoll_pct}% of one core (goal: under 1%): ok"
  else
    echo "  epoll mode idle: ${epoll_pct}% of one core (goal: under 1%): ABOVE THE GOAL"
  fi
  echo

  echo "(b) requests/s, hello world, wrk -t1, ${DURATION} s runs, median of $REPEAT (alternating):"
  local luv_port=$((PORT_BASE + 4)) run_port=$((PORT_BASE + 5)) luv_pid run_pid conns r
  start_server luv_hello "$luv_port" luv
  luv_pid="$SERVER_PID"
  start_server run_hello "$run_port" run
  run_pid="$SERVER_PID"
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$luv_port" 50 "$WARMUP" luv-warmup "$luv_pid"
    run_wrk "$run_port" 50 "$WARMUP" run-warmup "$run_pid"
  fi
  for conns in $CONNECTIONS; do
    local luv_rps=() run_rps=() luv_us=() run_us=()
    for ((r = 1; r <= REPEAT; r++)); do
      run_wrk "$luv_port" "$conns" "$DURATION" "luv-c$conns-$r" "$luv_pid"
      luv_rps+=("$WRK_RPS")
      luv_us+=("$WRK_US")
      run_wrk "$run_port" "$conns" "$DURATION" "run-c$conns-$r" "$run_pid"
      run_rps+=("$WRK_RPS")
      run_us+=("$WRK_US")
      log "$conns connections, run $r/$REPEAT: luv ${luv_rps[-1]} req/s (${luv_us[-1]} us CPU/req)," \
        "mgr:run() ${run_rps[-1]} req/s (${run_us[-1]} us CPU/req)"
    done
    local l m lu mu
    l="$(median "${luv_rps[@]}")"
    m="$(median "${run_rps[@]}")"
    lu="$(median "${luv_us[@]}")"
    mu="$(median "${run_us[@]}")"
    printf '  %4s connections: luv %s req/s, mgr:run() %s req/s, luv/run ratio %s' "$conns" "$l" "$m" "$(ratio "$l" "$m")"
    printf ' (CPU per request: luv %s us, mgr:run() %s us, run/luv ratio %s)\n' "$lu" "$mu" "$(ratio "$mu" "$lu")"
  done
  stop_server "$luv_pid"
  stop_server "$run_pid"
}

main "$@"
