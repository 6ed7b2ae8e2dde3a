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
LOG_TAG=luv-bench
BUILD_DIR="${BUILD_DIR:-build-luv-bench}"
BUILD_TARGET=mongoose_ffi
PORT_BASE="${PORT_BASE:-18241}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

IDLE_SECONDS="${IDLE_SECONDS:-5}"
PARTS="${PARTS:-a b c}"
LAT_REQUESTS="${LAT_REQUESTS:-200}"
LAT_GAP_MS="${LAT_GAP_MS:-5}"
LAT_WARMUP="${LAT_WARMUP:-500}"
# The two sides of (b) and (c): attached to luv, and on mgr:run().
SIDE_LABEL[run]="mgr:run()"

has_part() { in_list "$1" "$PARTS"; }

# start_hello NAME PORT MODE [MS]: bench/luv_hello.lua in MODE, pinned to
# the server CPU, once it answers. Sets SERVER_PID.
start_hello() {
  local name="$1" port="$2"
  shift 2
  start_server "$name" "$SERVER_CPU" "http://127.0.0.1:$port/" \
    scripts/lua-env.sh "$LUAJIT" bench/luv_hello.lua "$port" "$@"
}

# idle NAME PORT MODE [MS]: CPU use of an idle server over IDLE_SECONDS, in
# percent of one core. Prints a result line; sets IDLE_PCT.
idle() {
  local name="$1" port="$2" pid t0 t1 w0 w1
  shift 2
  start_hello "$name" "$port" "$@"
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

# sample_latency SIDE NAME: a MEASURE of rounds: one round of the latency
# client against SIDE, after LAT_WARMUP unmeasured requests in the first
# round. Figures: the median and 90th percentile round trip (us).
sample_latency() {
  local out="$WORK_DIR/latency-$2.txt" warm=0 med p90 min
  if [ "$ROUND" = 1 ]; then warm="$LAT_WARMUP"; fi
  run_client "the latency client against $2" $((LAT_REQUESTS * (LAT_GAP_MS + 50) / 1000 + 60)) "$out" \
    python3 "$WORK_DIR/latency.py" "$(url_port "${SIDE_URL[$1]}")" "$LAT_REQUESTS" "$LAT_GAP_MS" "$warm"
  read -r med p90 min <"$out" || die "no latency figures for $2"
  SAMPLE="$med $p90"
  SAMPLE_TEXT="median $med us (p90 $p90, min $min)"
}

# print_rps NAME luv run: the REPORT of compare: a result line of (b).
print_rps() {
  local l m lu mu
  read -r l lu <<<"${MEDIAN[luv]}"
  read -r m mu <<<"${MEDIAN[run]}"
  printf '  %4s connections: luv %s req/s, mgr:run() %s req/s, luv/run ratio %s' "$CONNS" "$l" "$m" "$(ratio "$l" "$m")"
  printf ' (CPU per request: luv %s us, mgr:run() %s us, run/luv ratio %s)\n' "$lu" "$mu" "$(ratio "$mu" "$lu")"
}

# serve_both NAME PORT: the server attached to luv (epoll mode) as side luv
# on PORT, the one on mgr:run() as side run on PORT+1.
serve_both() {
  local url="http://127.0.0.1"
  serve luv "luv_$1" "$url:$2/" scripts/lua-env.sh "$LUAJIT" bench/luv_hello.lua "$2" luv
  serve run "run_$1" "$url:$(($2 + 1))/" scripts/lua-env.sh "$LUAJIT" bench/luv_hello.lua $(($2 + 1)) run
}

main() {
  local part tools=()
  need_whole 1 IDLE_SECONDS DURATION REPEAT LAT_REQUESTS
  need_whole 0 WARMUP LAT_GAP_MS LAT_WARMUP
  for part in $PARTS; do
    case "$part" in a | b | c) ;; *) die "PARTS takes a, b and c, not $part" ;; esac
  done
  if has_part b; then tools+=(wrk); fi
  if has_part c; then tools+=(python3); fi
  need_tools awk "${tools[@]}"
  "$LUAJIT" -e 'require("luv")' 2>/dev/null || die "require(\"luv\") fails under $LUAJIT (Debian: apt-get install lua-luv)"
  build
  print_header "mongoose.luv benchmarks" ", luv $("$LUAJIT" -e 'io.write(require("luv").version_string())')"
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
  serve_both hello $((PORT_BASE + 4))
  compare print_rps hello luv run
  stop_sides luv run
  echo
}

part_latency() {
  local l m lp mp
  echo "(c) latency, idle server: $LAT_REQUESTS sequential requests on one keep-alive connection," \
    "${LAT_GAP_MS} ms apart, median of $REPEAT rounds (alternating):"
  write_latency_client
  serve_both latency $((PORT_BASE + 6))
  rounds sample_latency latency "latency round" luv run
  stop_sides luv run
  read -r l lp <<<"${MEDIAN[luv]}"
  read -r m mp <<<"${MEDIAN[run]}"
  printf '  round trip: luv %s us (p90 %s), mgr:run() %s us (p90 %s), luv/run ratio %s\n' \
    "$l" "$lp" "$m" "$mp" "$(ratio "$l" "$m")"
}

main "$@"
