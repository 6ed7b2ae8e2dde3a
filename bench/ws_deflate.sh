#!/usr/bin/env bash
# What permessage-deflate costs and saves (issue 12): a WebSocket echo of
# JSON documents with compression negotiated and without, through the Lua
# API (bench/ws_echo.lua: off, on = the default without context takeover,
# ctx = with it) and, as a reference point, python3-websockets' own server
# (bench/ws_deflate_server.py: off, on = its default, context takeover). Prints messages/s, the server's CPU
# time per message (/proc/PID/stat) and the bytes per message on the wire
# each way (TCP payload, from the load's sockets: tcpi_bytes_acked and
# tcpi_bytes_received).
#
#   bash bench/ws_deflate.sh
#   SIZE=512 DURATION=5 bash bench/ws_deflate.sh
#
# Environment (and common.sh's DURATION, WARMUP, BUILD_DIR, NO_BUILD,
# PORT_BASE, LUAJIT):
#   SIZE         bytes of the JSON message (default 2048)
#   WS_CONNECTIONS  connections of the load (default 4)
#   WS_WINDOW    messages each connection sends before awaiting their echoes
#                (default 16)
#   SERVERS      which servers (default "lua python")
#
# Servers on CPU 0, the load (bench/ws_deflate_load.py, python3-websockets)
# on CPU 1; everything on 127.0.0.1 and stopped on exit. The Python load
# saturates first, so compare CPU per message rather than messages/s.
BENCH_NAME=ws_deflate
SIDES=mongoose
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
PORT_BASE="${PORT_BASE:-8451}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
SIZE="${SIZE:-2048}"
WS_CONNECTIONS="${WS_CONNECTIONS:-4}"
WS_WINDOW="${WS_WINDOW:-16}"
SERVERS="${SERVERS:-lua python}"
PYTHON="${PYTHON:-/usr/bin/python3}"
ROWS=()

# wait_port PORT PID: until something listens on 127.0.0.1:PORT (10 s).
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || die "the server exited before listening"
    port_free "$1" || return 0
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1 after 10 s"
}

# one SERVER MODE PORT: appends a row.
one() {
  local server="$1" mode="$2" port="$3" pid out rc=0 t0 t1 n ext sent received
  case "$server" in
    lua) taskset -c "$SERVER_CPU" env BUILD_DIR="$BUILD_DIR" scripts/lua-env.sh "$LUAJIT" \
      bench/ws_echo.lua "$port" "$mode" >"$WORK_DIR/$server-$mode.log" 2>&1 & ;;
    python) taskset -c "$SERVER_CPU" "$PYTHON" bench/ws_deflate_server.py "$port" "$mode" \
      >"$WORK_DIR/$server-$mode.log" 2>&1 & ;;
    *) die "unknown server $server (SERVERS: lua python)" ;;
  esac
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid"
  if [ "$WARMUP" -gt 0 ]; then
    taskset -c "$CLIENT_CPU" "$PYTHON" bench/ws_deflate_load.py "$port" "$WARMUP" "$mode" "$SIZE" \
      "$WS_CONNECTIONS" "$WS_WINDOW" >/dev/null || die "the warm-up load failed ($server, $mode)"
  fi
  out="$WORK_DIR/load-$server-$mode.txt"
  t0="$(cpu_ticks "$pid")"
  timeout $((DURATION + 60)) taskset -c "$CLIENT_CPU" "$PYTHON" bench/ws_deflate_load.py "$port" \
    "$DURATION" "$mode" "$SIZE" "$WS_CONNECTIONS" "$WS_WINDOW" >"$out" 2>&1 || rc=$?
  t1="$(cpu_ticks "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$rc" -eq 0 ] || { cat "$out" >&2; die "the load failed against $server ($mode)"; }
  n="$(sed -n 's/^messages \([0-9]*\).*/\1/p' "$out")"
  read -r ext sent received < <(sed -n 's/.* extensions \([^ ]*\) sent \([0-9]*\) received \([0-9]*\)$/\1 \2 \3/p' "$out")
  [ -n "$n" ] && [ "$n" -gt 0 ] || { cat "$out" >&2; die "no messages counted ($server, $mode)"; }
  ROWS+=("$(awk -v s="$server" -v m="$mode" -v n="$n" -v d="$DURATION" -v t="$((t1 - t0))" \
    -v hz="$CLK_TCK" -v r="$sent" -v w="$received" -v e="$ext" \
    'BEGIN { printf "%-7s %-4s %9.0f %9.1f %10.0f %10.0f  %s", s, m, n / d, t / hz * 1e6 / n,
             r / n, w / n, e }')")
  log "$server, deflate $mode: ${ROWS[-1]}"
}

main() {
  need_tools
  "$PYTHON" -c "import websockets" 2>/dev/null ||
    die "python3-websockets is missing (scripts/setup-deps.sh installs it)"
  build
  echo "== mongoose-ffi ws_deflate benchmark (bench/ws_deflate.sh)"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1)"
  echo "python:   $("$PYTHON" --version) with websockets $("$PYTHON" -c 'import websockets; print(websockets.__version__)')"
  echo "load:     $WS_CONNECTIONS connections x windows of $WS_WINDOW messages of $SIZE bytes (JSON)," \
    "${WARMUP}s warm-up + ${DURATION}s measured"
  local server mode modes port="$PORT_BASE"
  for server in $SERVERS; do
    # lua: off, on (the default: no context takeover), ctx (context
    # takeover); python: off, on (its default: context takeover).
    modes="off on"
    [ "$server" = lua ] && modes="off on ctx"
    for mode in $modes; do
      port_free "$port" || die "something listens on 127.0.0.1:$port (set PORT_BASE)"
      one "$server" "$mode" "$port"
      port=$((port + 1))
    done
  done
  echo
  printf '%-7s %-4s %9s %9s %10s %10s  %s\n' server defl "msg/s" "us/msg" "to srv B" "from srv B" extension
  printf '%s\n' "${ROWS[@]}"
}
main "$@"
