#!/usr/bin/env bash
# What idle connections cost (issue 11): hello-world throughput and server
# CPU per request while N idle connections are open, and the server's RSS
# per idle connection, for pure-C Mongoose, the mongoose-ffi Lua API and
# nginx + Lua, in one run.
#
#   bash bench/scale.sh                     (or: make bench-scale)
#   LEVELS="0 15000" KINDS=ws SIDES="lua nginx" bash bench/scale.sh
#
# Environment (and common.sh's DURATION, WARMUP, BUILD_DIR, NO_BUILD,
# PORT_BASE, LUAJIT):
#   LEVELS   idle connection counts, one round each (default "0 1000 5000 15000")
#   KINDS    http (keep-alive connections after one request) and/or ws
#            (open WebSockets) (default "http ws")
#   SIDES    c (bench/ws_echo_c.c), lua (bench/ws_echo.lua), nginx (nginx-light
#            + libnginx-mod-http-lua, one process) (default "c lua nginx")
#   CONNECTIONS  wrk's connections (default 50)
#   ROUNDS   rounds (default 1); each walks the levels of every side in
#            turn; with more, req/s and CPU per request are the medians over
#            the rounds (a change in background load weighs less), and the
#            verdict's ratios pair figures of one round (their median over
#            the rounds)
#
# Each level has a fresh server (of each side in turn) on CPU 0; wrk and
# the idle connections (bench/idle_hold.c: one request or handshake each,
# then quiet; source addresses 127.0.0.2-201) run on CPU 1. Per level: a
# wrk warm-up, the server's RSS before, the idle connections opened, a
# measured run of DURATION seconds, the RSS after; then the idle
# connections close. RSS per idle connection is (after - before) / N. The nginx side installs nginx-light
# and libnginx-mod-http-lua when missing (as root), which replaces luajit
# with luajit2: both Lua servers then run on luajit2.
BENCH_NAME=scale
INSTALL_WRK=1
SIDES="${SIDES:-c lua nginx}"
CONNECTIONS="${CONNECTIONS:-50}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
PORT_BASE="${PORT_BASE:-8401}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
LEVELS="${LEVELS:-0 1000 5000 15000}"
KINDS="${KINDS:-http ws}"
ROUNDS="${ROUNDS:-1}"
RAW=()   # one per round: "kind|level|side|rps|us|rss_per_conn|alive"
declare -A BY_ROUND  # "round|kind|level|side" -> "rps us" (the verdict's pairs)
ROUND=1
ROWS=()  # over the rounds (see summarize), same fields

# The nginx + Lua side: hello on /, a WebSocket echo (Debian's
# lua-nginx-websocket, OpenResty's lua-resty-websocket) on /ws.
nginx_conf() {
  local port="$1"
  cat <<CONF
worker_rlimit_nofile 20000;
error_log $WORK_DIR/nginx/logs/error.log error;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  lua_package_path "$LIBS_DIR/?.lua;;";
  lua_socket_log_errors off;
  server {
    listen 127.0.0.1:$port backlog=1024;
    location / {
      content_by_lua_block {
        ngx.header.content_type = "text/plain"
        ngx.print("hello, world\n")
      }
    }
    location /ws {
      content_by_lua_block {
        local server = require "nginx.websocket.server"
        local wb = server:new({ timeout = 300000, max_payload_len = 65536 })
        if not wb then return ngx.exit(400) end
        while true do
          local data, typ, err = wb:recv_frame()
          if not data then
            if not (err and err:find("timeout", 1, true)) then return end
          elseif typ == "close" then
            wb:send_close()
            return
          elseif typ == "ping" then
            wb:send_pong(data)
          elseif typ == "text" then
            wb:send_text(data)
          elseif typ == "binary" then
            wb:send_binary(data)
          end
        end
      }
    }
  }
}
CONF
}

# start_side SIDE PORT: the server of SIDE (nginx runs without a master, so
# SIDE_PID[SIDE] is the process serving).
start_side() {
  local side="$1" port="$2" url="http://127.0.0.1:$2/"
  case "$side" in
    c) serve c c "$url" "$BUILD_DIR/bench_c_ws_echo" "$port" ;;
    lua) serve lua lua "$url" scripts/lua-env.sh "$LUAJIT" bench/ws_echo.lua "$port" ;;
    nginx) serve_nginx nginx "$port" 1 "$(nginx_conf "$port")" ;;
    *) die "unknown side $side (SIDES: c lua nginx)" ;;
  esac
}

print_setup() {
  print_header "mongoose-ffi scale benchmark (bench/scale.sh)"
  if has_side nginx; then echo "nginx:    $(nginx -v 2>&1 | head -n1)"; fi
  echo "sides:    $SIDES; levels: $LEVELS idle connections; kinds: $KINDS; rounds: $ROUNDS (medians)"
  echo "load:     wrk -t1 -c$CONNECTIONS on / (hello), ${WARMUP}s warm-up + ${DURATION}s measured per level"
  echo "pinning:  servers on CPU $SERVER_CPU; wrk and the idle connections on CPU $CLIENT_CPU"
}

# hold KIND N PORT: opens N idle connections (bench_idle_hold on the client
# CPU) and waits for them. Sets HOLD_PID.
hold() {
  local kind="$1" n="$2" port="$3" out="$WORK_DIR/hold-$1-$2.txt" i
  : >"$out"
  taskset -c "$CLIENT_CPU" "$BUILD_DIR/bench_idle_hold" -p "$port" -n "$n" -k "$kind" -t 600 \
    >"$out" 2>&1 &
  HOLD_PID=$!
  PIDS+=("$HOLD_PID")
  for ((i = 0; i < 1200; i++)); do
    grep -q '^ready' "$out" && return 0
    kill -0 "$HOLD_PID" 2>/dev/null || { cat "$out" >&2; die "bench_idle_hold failed ($kind, $n)"; }
    sleep 0.1
  done
  die "bench_idle_hold did not open $n $kind connections within 120 s"
}

# release KIND N: closes the idle connections; sets HOLD_ALIVE (how many
# the server had kept open).
release() {
  local out="$WORK_DIR/hold-$1-$2.txt"
  kill -TERM "$HOLD_PID" 2>/dev/null || true
  wait "$HOLD_PID" 2>/dev/null || true
  HOLD_ALIVE="$(sed -n 's/^alive //p' "$out")"
}

# level SIDE KIND N PID PORT: one level on a fresh server: a warm-up (the
# JIT compiles, the heap grows to serve the load), the RSS before, the idle
# connections opened, the measured run, the RSS after; appends to RAW.
level() {
  local side="$1" kind="$2" n="$3" pid="$4" port="$5" before after per=- alive="$3"
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "http://127.0.0.1:$port/" "$CONNECTIONS" "$WARMUP" "$side-$kind-$n-warmup" "$pid"
  fi
  before="$(rss_kb "$pid")"
  if [ "$n" -gt 0 ]; then hold "$kind" "$n" "$port"; fi
  sleep 1  # idle connections are parked once quiet for 250 ms
  run_wrk "http://127.0.0.1:$port/" "$CONNECTIONS" "$DURATION" "$side-$kind-$n" "$pid"
  after="$(rss_kb "$pid")"
  if [ "$n" -gt 0 ]; then
    per="$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')"
    release "$kind" "$n"
    alive="$HOLD_ALIVE"
    [ "$alive" = "$n" ] || log "warning: $side closed $((n - ${alive:-0})) of the $n idle $kind connections"
  fi
  log "$side, $kind, $n idle: $WRK_RPS req/s, $WRK_US us CPU/req, RSS/idle conn $per B"
  RAW+=("$kind|$n|$side|$WRK_RPS|$WRK_US|$per|$alive")
  BY_ROUND["$ROUND|$kind|$n|$side"]="$WRK_RPS $WRK_US"
}

# summarize: ROWS from RAW: req/s, CPU per request and RSS per idle
# connection, each the median over the rounds.
summarize() {
  local kind n side r rps us per alive
  for kind in $KINDS; do
    for n in $LEVELS; do
      for side in $SIDES; do
        local all_rps=() all_us=() all_per=()
        for r in "${RAW[@]}"; do
          case "$r" in "$kind|$n|$side|"*) ;; *) continue ;; esac
          IFS='|' read -r _ _ _ rps us per alive <<<"$r"
          all_rps+=("$rps") all_us+=("$us") all_per+=("$per")
        done
        [ "${#all_rps[@]}" -gt 0 ] || continue
        per="$(median "${all_per[@]}")"
        ROWS+=("$kind|$n|$side|$(median "${all_rps[@]}")|$(median "${all_us[@]}")|$per|$alive")
      done
    done
  done
}

row_field() {  # row_field KIND N SIDE FIELD(4 rps, 5 us, 6 rss)
  local r k n s
  for r in "${ROWS[@]}"; do
    IFS='|' read -r k n s _ <<<"$r"
    if [ "$k" = "$1" ] && [ "$n" = "$2" ] && [ "$s" = "$3" ]; then
      echo "$r" | cut -d'|' -f"$4"
      return
    fi
  done
}

print_table() {
  local kind n side rps us per alive zero_us nginx_rps
  echo
  printf '%-5s %6s  %-6s %9s %8s %12s %11s %13s\n' kind idle side "req/s" "us/req" "RSS/idle(B)" \
    "us/us(0)" "req/s÷nginx"
  for kind in $KINDS; do
    for n in $LEVELS; do
      for side in $SIDES; do
        IFS='|' read -r _ _ _ rps us per alive <<<"$(printf '%s\n' "${ROWS[@]}" | grep "^$kind|$n|$side|")"
        zero_us="$(row_field "$kind" 0 "$side" 5)"
        nginx_rps="$(row_field "$kind" "$n" nginx 4)"
        printf '%-5s %6s  %-6s %9s %8s %12s %11s %13s\n' "$kind" "$n" "$side" "$rps" "$us" "$per" \
          "$(ratio "$us" "${zero_us:-0}")" "$(ratio "$rps" "${nginx_rps:-0}")"
      done
    done
  done
}

# round_field ROUND KIND N SIDE FIELD(1 rps, 2 us): one round's figure.
round_field() {
  local v="${BY_ROUND["$1|$2|$3|$4"]:-}"
  [ -n "$v" ] && echo "$v" | cut -d' ' -f"$5"
}

# The targets of issue 11 for the Lua API at the largest level. The ratios
# pair figures of the same round (measured minutes, not a whole run,
# apart), and the verdict is their median over the rounds.
print_verdict() {
  has_side lua || return 0
  local top kind per bound r cpu rate cpus rates
  # shellcheck disable=SC2086 # one level a line
  top="$(printf '%s\n' $LEVELS | sort -n | tail -n1)"
  [ "$top" -gt 0 ] || return 0
  echo
  for kind in $KINDS; do
    cpus=() rates=()
    for ((r = 1; r <= ROUNDS; r++)); do
      cpu="$(ratio "$(round_field "$r" "$kind" "$top" lua 2)" "$(round_field "$r" "$kind" 0 lua 2)")"
      rate="$(ratio "$(round_field "$r" "$kind" "$top" lua 1)" "$(round_field "$r" "$kind" "$top" nginx 1)")"
      cpus+=("$cpu") rates+=("$rate")
    done
    per="$(row_field "$kind" "$top" lua 6)"
    bound=$([ "$kind" = http ] && echo 1024 || echo 2048)
    echo "lua, $top idle $kind:" \
      "CPU/req $(median "${cpus[@]}") x zero-idle (target <= 1.15; rounds ${cpus[*]})," \
      "req/s $(median "${rates[@]}") x nginx (target >= 0.90; rounds ${rates[*]})," \
      "RSS $per B per idle connection (target <= $bound)"
  done
}

main() {
  if has_side nginx; then # first: it may bring luajit2
    need_nginx 1
    need_openresty_lib lua-nginx-websocket nginx/websocket/server.lua
  fi
  need_tools wrk
  build bench_c_ws_echo bench_idle_hold
  ulimit -n "$(ulimit -Hn)"
  print_setup
  # Each round walks the levels of every side in turn (a change in the
  # machine's background load falls on all sides alike), and each level
  # has a server of its own, started for it: its RSS grows from a fresh
  # start, not into memory that an earlier level's connections left free.
  local side kind n port
  declare -A SIDE_PORT
  port="$PORT_BASE"
  for side in $SIDES; do
    SIDE_PORT[$side]="$port"
    port=$((port + 1))
  done
  for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    for kind in $KINDS; do
      for n in $LEVELS; do
        for side in $SIDES; do
          start_side "$side" "${SIDE_PORT[$side]}"
          level "$side" "$kind" "$n" "${SIDE_PID[$side]}" "${SIDE_PORT[$side]}"
          stop_sides "$side"
        done
      done
    done
  done
  summarize
  print_table
  print_verdict
}
main "$@"
