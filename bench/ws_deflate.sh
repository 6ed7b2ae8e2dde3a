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

# one SERVER MODE PORT: appends a row.
one() {
  local server="$1" mode="$2" port="$3" probe="tcp://127.0.0.1:$3" pid out t0 t1 n ext sent received
  case "$server" in
    lua) start_server "$server-$mode" "$SERVER_CPU" "$probe" scripts/lua-env.sh "$LUAJIT" \
      bench/ws_echo.lua "$port" "$mode" ;;
    python) start_server "$server-$mode" "$SERVER_CPU" "$probe" "$PYTHON" bench/ws_deflate_server.py \
      "$port" "$mode" ;;
    *) die "unknown server $server (SERVERS: lua python)" ;;
  esac
  pid="$SERVER_PID"
  if [ "$WARMUP" -gt 0 ]; then
    run_client "the warm-up load ($server, $mode)" $((WARMUP + 60)) "$WORK_DIR/warmup-$server-$mode.txt" \
      "$PYTHON" bench/ws_deflate_load.py "$port" "$WARMUP" "$mode" "$SIZE" "$WS_CONNECTIONS" "$WS_WINDOW"
  fi
  out="$WORK_DIR/load-$server-$mode.txt"
  t0="$(cpu_ticks "$pid")"
  run_client "the load against $server ($mode)" $((DURATION + 60)) "$out" \
    "$PYTHON" bench/ws_deflate_load.py "$port" "$DURATION" "$mode" "$SIZE" "$WS_CONNECTIONS" "$WS_WINDOW"
  t1="$(cpu_ticks "$pid")"
  stop_server "$pid"
  n="$(sed -n 's/^messages \([0-9]*\).*/\1/p' "$out")"
  read -r ext sent received < <(sed -n 's/.* extensions \([^ ]*\) sent \([0-9]*\) received \([0-9]*\)$/\1 \2 \3/p' "$out")
  if [ -z "$n" ] || [ "$n" -eq 0 ]; then
    cat "$out" >&2
    die "no messages counted ($server, $mode)"
  fi
  ROWS+=("$(awk -v s="$server" -v m="$mode" -v n="$n" -v d="$DURATION" -v t="$((t1 - t0))" \
    -v hz="$CLK_TCK" -v r="$sent" -v w="$received" -v e="$ext" \
    'BEGIN { printf "%-7s %-4s %9.0f %9.1f %10.0f %10.0f  %s", s, m, n / d, t / hz * 1e6 / n,
             r / n, w / n, e }')")
  log "$server, deflate $mode: ${ROWS[-1]}"
}

main() {
  need_tools "$PYTHON"
  "$PYTHON" -c "import websockets" 2>/dev/null ||
    die "python3-websockets is missing (scripts/setup-deps.sh installs it)"
  build
  print_header "mongoose-ffi ws_deflate benchmark (bench/ws_deflate.sh)"
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
      one "$server" "$mode" "$port"
      port=$((port + 1))
    done
  done
  echo
  printf '%-7s %-4s %9s %9s %10s %10s  %s\n' server defl "msg/s" "us/msg" "to srv B" "from srv B" extension
  printf '%s\n' "${ROWS[@]}"
}
main "$@"
