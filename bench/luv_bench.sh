#!/usr/bin/env bash
# Benchmarks of mongoose.luv, a manager running inside a libuv loop (see
# bench/README.md):
#   (a) CPU used by an idle attached server (a listener, no traffic), in
#       percent of one core, for the epoll mode (goal: under 1%), the
#       interval mode at 1 ms and 10 ms, and mgr:run() for reference;
#   (b) requests/s of the attached server (uv.run) against the same server
#       on the manager's own loop (mgr:run()), both driven by wrk in the same
#       run, printed as a ratio;
#   (c) latency: the median round trip of LAT_REQUESTS sequential requests on
#       one keep-alive connection, LAT_GAP_MS apart so that the server is idle
#       (asleep in epoll_wait) when each one arrives, attached to luv against
#       mgr:run(), printed as a ratio (goal: a request arriving while the luv
#       loop is idle is answered within a small factor of run()).
#
#   bash bench/luv_bench.sh
#   IDLE_SECONDS=5 DURATION=10 CONNECTIONS="50 200" REPEAT=3 bash bench/luv_bench.sh
#   PARTS=c bash bench/luv_bench.sh                  the latency comparison alone
#
# Environment:
#   IDLE_SECONDS  seconds of each idle measurement (default 5)
#   DURATION      seconds of each measured wrk run (default 10)
#   WARMUP        seconds of an unmeasured wrk run per server (default 2)
#   CONNECTIONS   wrk connection counts, one round each (default "50")
#   REPEAT        wrk runs (b) or latency rounds (c) per server, alternately; the median counts (default 3)
#   PARTS         which measurements to run: any of a, b, c (default "a b c")
#   LAT_REQUESTS  measured requests per latency round (default 200)
#   LAT_GAP_MS    pause before each measured request, ms (default 5)
#   LAT_WARMUP    unmeasured requests (no pause) before each server's first round (default 500)
#   BUILD_DIR     build folder (default build-luv-bench; only mongoose_ffi is built)
#   NO_BUILD      1: use what BUILD_DIR holds (default 0)
#   PORT_BASE     first TCP port used on 127.0.0.1 (default 18241)
#   LUAJIT        LuaJIT binary (default luajit)
#
# Servers run pinned to CPU 0 and wrk and the latency client (python3) to
# CPU 1 (taskset); all traffic goes to 127.0.0.1. Everything started here is stopped on exit, also on errors.
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
PARTS="${PARTS:-a b c}"
LAT_REQUESTS="${LAT_REQUESTS:-200}"
LAT_GAP_MS="${LAT_GAP_MS:-5}"
LAT_WARMUP="${LAT_WARMUP:-500}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-luv-bench.XXXXXX")"
SERVER_PIDS=()
WRK_PID=
CLIENT_PID=
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
  if [ -n "$CLIENT_PID" ]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
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
  local tools=(curl taskset timeout awk "$LUAJIT")
  if has_part b; then tools+=(wrk); fi
  if has_part c; then tools+=(python3); fi
  for tool in "${tools[@]}"; do
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

has_part() {
  case " $PARTS " in *" $1 "*) return 0 ;; esac
  return 1
}

# The latency client: sequential GET / on one keep-alive connection
# (TCP_NODELAY), each timed from the send to the last byte of the reply
# (Content-Length). Prints the median, 90th percentile and minimum in us.
write_latency_client() {
  cat >"$WORK_DIR/latency.py" <<'EOF'
import socket, sys, time

port, count, gap_ms, warmup = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def round_trip():
    t0 = time.perf_counter_ns()
    s.sendall(REQUEST)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("latency: the server closed the connection")
        buf += chunk
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            continue
        head = buf[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
        if len(buf) >= end + 4 + length:
            break
    t1 = time.perf_counter_ns()
    if not buf.startswith(b"HTTP/1.1 200"):
        sys.exit("latency: not a 200 reply: %r" % buf[:40])
    return (t1 - t0) / 1000.0


for _ in range(warmup):
    round_trip()
times = []
for _ in range(count):
    time.sleep(gap_ms / 1000.0)
    times.append(round_trip())
times.sort()
print("%.1f %.1f %.1f" % (times[len(times) // 2], times[int(len(times) * 0.9)], times[0]))
EOF
}

# run_latency PORT NAME WARMUP: one round of the latency client; sets
# LAT_MED, LAT_P90 and LAT_MIN (microseconds).
run_latency() {
  local port="$1" name="$2" warmup="$3" rc=0 out="$WORK_DIR/latency-$2.txt"
  timeout $((LAT_REQUESTS * (LAT_GAP_MS + 50) / 1000 + 60)) taskset -c "$CLIENT_CPU" \
    python3 "$WORK_DIR/latency.py" "$port" "$LAT_REQUESTS" "$LAT_GAP_MS" "$warmup" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    die "the latency client failed against $name (exit status $rc)"
  fi
  read -r LAT_MED LAT_P90 LAT_MIN <"$out" || die "no latency figures for $name"
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
  [[ "$LAT_REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "LAT_REQUESTS must be a positive whole number"
  [[ "$LAT_GAP_MS" =~ ^[0-9]+$ ]] || die "LAT_GAP_MS must be a whole number of ms"
  [[ "$LAT_WARMUP" =~ ^[0-9]+$ ]] || die "LAT_WARMUP must be a whole number"
  local part
  for part in $PARTS; do
    case "$part" in a | b | c) ;; *) die "PARTS takes a, b and c, not $part" ;; esac
  done
  need_tools
  build
  echo "== mongoose.luv benchmarks"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "kernel:   $(uname -sr)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1), luv $("$LUAJIT" -e 'io.write(require("luv").version_string())')"
  if has_part b; then echo "wrk:      $(wrk -v 2>&1 | head -n1)"; fi
  if has_part c; then echo "python3:  $(python3 -V 2>&1)"; fi
  echo "pinning:  servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU"
  echo
  if has_part a; then part_idle; fi
  if has_part b; then part_rps; fi
  if has_part c; then part_latency; fi
}

part_idle() {
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
}

part_rps() {
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
  echo
}

part_latency() {
  echo "(c) latency, idle server: $LAT_REQUESTS sequential requests on one keep-alive connection," \
    "${LAT_GAP_MS} ms apart, median of $REPEAT rounds (alternating):"
  local luv_port=$((PORT_BASE + 6)) run_port=$((PORT_BASE + 7)) luv_pid run_pid r warm luv_min
  local luv_med=() run_med=() luv_p90=() run_p90=()
  write_latency_client
  start_server luv_latency "$luv_port" luv
  luv_pid="$SERVER_PID"
  start_server run_latency "$run_port" run
  run_pid="$SERVER_PID"
  for ((r = 1; r <= REPEAT; r++)); do
    warm=0
    if [ "$r" = 1 ]; then warm="$LAT_WARMUP"; fi
    run_latency "$luv_port" "luv-$r" "$warm"
    luv_med+=("$LAT_MED")
    luv_p90+=("$LAT_P90")
    luv_min="$LAT_MIN"
    run_latency "$run_port" "run-$r" "$warm"
    run_med+=("$LAT_MED")
    run_p90+=("$LAT_P90")
    log "latency round $r/$REPEAT: luv median ${luv_med[-1]} us (p90 ${luv_p90[-1]}, min $luv_min)," \
      "mgr:run() median ${run_med[-1]} us (p90 ${run_p90[-1]}, min $LAT_MIN)"
  done
  local l m lp mp
  l="$(median "${luv_med[@]}")"
  m="$(median "${run_med[@]}")"
  lp="$(median "${luv_p90[@]}")"
  mp="$(median "${run_p90[@]}")"
  printf '  round trip: luv %s us (p90 %s), mgr:run() %s us (p90 %s), luv/run ratio %s\n' \
    "$l" "$lp" "$m" "$mp" "$(ratio "$l" "$m")"
  stop_server "$luv_pid"
  stop_server "$run_pid"
}

main "$@"
