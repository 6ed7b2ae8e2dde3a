#!/usr/bin/env bash
# Static files: the Lua API (res:serve_dir with its defaults,
# bench/static_server.lua) against pure-C Mongoose (mg_http_serve_dir,
# bench/c_static_server.c, same mongoose.c and settings) and nginx
# (Debian's nginx-light, sendfile on, one worker, a config written here).
# For each file size, one wrk run per server: req/s, MB/s of body (10^6
# bytes), the server's CPU time per request (utime + stime from
# /proc/PID/stat, all its processes) and the ratios to nginx and C.
#
#   bash bench/static.sh
#   SERVERS="lua c" SIZES="65536" DURATION=6 bash bench/static.sh
#
# Environment:
#   SERVERS      which servers, of "lua c nginx" (default: all three)
#   SIZES        file sizes in bytes (default "1024 65536 1048576")
#   DURATION     seconds of each measured wrk run (default 6)
#   WARMUP       seconds of an unmeasured run before each (default 1)
#   CONNECTIONS  wrk connections (default 16; wrk -t1)
#   BUILD_DIR    build folder (default build-bench, as bench/run.sh)
#   NO_BUILD     1: use what BUILD_DIR holds (default 0)
#   PORT_BASE    first TCP port on 127.0.0.1 (default 8141)
#   LUAJIT       LuaJIT binary (default luajit)
#   NGINX        nginx binary (default: nginx on PATH or /usr/sbin/nginx; as
#                root with apt-get, nginx-light is installed when missing)
#   NGINX_OPEN_FILE_CACHE  1: nginx gets an open_file_cache like the Lua
#                server's default one (256 entries, valid 1 s, errors cached);
#                default 0: nginx's own default, no cache
#
# Servers run pinned to CPU 0 and wrk to CPU 1 (taskset); all traffic stays
# on 127.0.0.1; every run is bounded (timeout) and everything started here
# is stopped on exit, also on errors.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SERVERS="${SERVERS:-lua c nginx}"
SIZES="${SIZES:-1024 65536 1048576}"
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-16}"
BUILD_DIR="${BUILD_DIR:-build-bench}"
NO_BUILD="${NO_BUILD:-0}"
PORT_BASE="${PORT_BASE:-8141}"
LUAJIT="${LUAJIT:-luajit}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-static.XXXXXX")"
CLK_TCK="$(getconf CLK_TCK)"
SERVER_PIDS=()
WRK_PID=
RESULTS=()  # "size|server|rps|mbps|us"

log() { echo "static: $*" >&2; }
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

has_server() {
  case " $SERVERS " in *" $1 "*) return 0 ;; esac
  return 1
}

# ---- setup ---------------------------------------------------------------------

need_tools() {
  local tool
  command -v wrk >/dev/null || die "wrk is missing (scripts/setup-deps.sh --with-bench-tools)"
  for tool in curl taskset timeout "$LUAJIT"; do
    command -v "$tool" >/dev/null || die "$tool is missing"
  done
  [ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
  if has_server nginx; then
    NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
    if [ ! -x "$NGINX" ]; then
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        log "installing nginx-light"
        timeout 600 apt-get install -y nginx-light >/dev/null || die "apt-get install nginx-light failed"
        # Debian starts the packaged service: this benchmark runs its own.
        if command -v systemctl >/dev/null; then systemctl stop nginx 2>/dev/null || true; fi
        NGINX=/usr/sbin/nginx
      else
        die "nginx is missing (apt-get install nginx-light, as root), or leave it out: SERVERS=\"lua c\""
      fi
    fi
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
  [ -x "$BUILD_DIR/bench_c_static" ] || die "$BUILD_DIR/bench_c_static was not built"
  [ -f "$BUILD_DIR/mongoose_ffi.so" ] || die "$BUILD_DIR/mongoose_ffi.so was not built"
}

make_files() {
  local size
  mkdir -p "$WORK_DIR/www"
  for size in $SIZES; do
    [[ "$size" =~ ^[1-9][0-9]*$ ]] || die "SIZES: $size is not a size in bytes"
    head -c "$size" /dev/urandom >"$WORK_DIR/www/f$size.bin"
  done
  # nginx's worker runs as nobody: it must be able to read them.
  chmod 755 "$WORK_DIR" "$WORK_DIR/www"
  chmod 644 "$WORK_DIR/www/"*
}

write_nginx_conf() {
  local port="$1" cache=""
  mkdir -p "$WORK_DIR/nginx/logs"  # opened at start, before the config is read
  if [ "${NGINX_OPEN_FILE_CACHE:-0}" = 1 ]; then
    cache="open_file_cache max=256 inactive=10s; open_file_cache_valid 1s; open_file_cache_errors on;"
  fi
  cat >"$WORK_DIR/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK_DIR/nginx/nginx.pid;
error_log $WORK_DIR/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  $cache
  client_body_temp_path $WORK_DIR/nginx/body;
  proxy_temp_path $WORK_DIR/nginx/proxy;
  fastcgi_temp_path $WORK_DIR/nginx/fastcgi;
  uwsgi_temp_path $WORK_DIR/nginx/uwsgi;
  scgi_temp_path $WORK_DIR/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    root $WORK_DIR/www;
  }
}
EOF
}

print_setup() {
  echo "== static files: Lua API vs pure-C Mongoose vs nginx"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "kernel:   $(uname -sr)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1)"
  echo "wrk:      $(wrk -v 2>&1 | head -n1)"
  if has_server nginx; then
    echo "nginx:    $("$NGINX" -v 2>&1 | head -n1) (sendfile on, 1 worker, open_file_cache" \
      "$([ "${NGINX_OPEN_FILE_CACHE:-0}" = 1 ] && echo on || echo off))"
  fi
  echo "servers:  $SERVERS (pinned to CPU $SERVER_CPU; wrk -t1 -c$CONNECTIONS on CPU $CLIENT_CPU)"
  echo "runs:     one of ${DURATION}s per server and size, after a ${WARMUP}s warm-up"
}

# ---- servers and wrk -----------------------------------------------------------

# start_server NAME PORT COMMAND...: starts COMMAND pinned to the server CPU,
# waits (up to 10 s) until it serves a file on PORT. Sets SERVER_PID.
start_server() {
  local name="$1" port="$2" probe i
  shift 2
  probe="http://127.0.0.1:$port/f$(echo "$SIZES" | awk '{ print $1 }').bin"
  if curl -s -o /dev/null --max-time 1 "$probe"; then
    die "something already answers on 127.0.0.1:$port (set PORT_BASE)"
  fi
  taskset -c "$SERVER_CPU" "$@" >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before answering"
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$probe" || true)" = 200 ]; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not serve $probe within 10 s"
}

stop_server() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: CPU time (user + system, clock ticks) of PID and its children
# now running (nginx's worker).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$total"
}

# run_wrk PORT SIZE SECONDS NAME PID: one wrk run on /fSIZE.bin; sets RPS,
# MBPS (body bytes, 10^6/s) and US (server CPU microseconds per request).
run_wrk() {
  local port="$1" size="$2" secs="$3" name="$4" pid="$5" rc=0 t0 t1 requests
  local out="$WORK_DIR/wrk-$name-$size.txt"
  t0="$(cpu_ticks "$pid")"
  timeout $((secs + 30)) taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${secs}s" "http://127.0.0.1:$port/f$size.bin" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  t1="$(cpu_ticks "$pid")"
  [ "$rc" -eq 0 ] || { cat "$out" >&2; die "wrk failed against $name (exit status $rc)"; }
  if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
    log "warning: $name, $size bytes: $(grep -e "Non-2xx" -e "Socket errors" "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  requests="$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")"
  RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  [ -n "$RPS" ] && [ -n "$requests" ] && [ "$requests" -gt 0 ] || { cat "$out" >&2; die "no requests counted for $name"; }
  MBPS="$(awk -v r="$RPS" -v s="$size" 'BEGIN { printf "%.0f", r * s / 1e6 }')"
  US="$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b; else print "-" }'
}

# ---- main ----------------------------------------------------------------------

main() {
  [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds"
  [[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
  local s
  for s in $SERVERS; do
    case "$s" in lua | c | nginx) ;; *) die "SERVERS: unknown server $s (lua, c, nginx)" ;; esac
  done
  need_tools
  build
  make_files
  print_setup
  local lua_port="$PORT_BASE" c_port=$((PORT_BASE + 1)) nginx_port=$((PORT_BASE + 2))
  declare -A port pid
  if has_server lua; then
    start_server lua "$lua_port" scripts/lua-env.sh "$LUAJIT" bench/static_server.lua "$WORK_DIR/www" "$lua_port"
    port[lua]="$lua_port" pid[lua]="$SERVER_PID"
  fi
  if has_server c; then
    start_server c "$c_port" "$BUILD_DIR/bench_c_static" "$WORK_DIR/www" "$c_port"
    port[c]="$c_port" pid[c]="$SERVER_PID"
  fi
  if has_server nginx; then
    write_nginx_conf "$nginx_port"
    start_server nginx "$nginx_port" "$NGINX" -p "$WORK_DIR/nginx" -c "$WORK_DIR/nginx/nginx.conf"
    port[nginx]="$nginx_port" pid[nginx]="$SERVER_PID"
  fi
  local size
  for size in $SIZES; do
    for s in $SERVERS; do
      if [ "$WARMUP" -gt 0 ]; then run_wrk "${port[$s]}" "$size" "$WARMUP" "$s-warmup" "${pid[$s]}"; fi
      run_wrk "${port[$s]}" "$size" "$DURATION" "$s" "${pid[$s]}"
      log "$size bytes, $s: $RPS req/s, $MBPS MB/s, $US us CPU/req"
      RESULTS+=("$size|$s|$RPS|$MBPS|$US")
    done
  done
  for s in $SERVERS; do stop_server "${pid[$s]}"; done

  echo
  echo "req/s: wrk's requests/s; MB/s: body bytes (10^6) per second; us/req: the server's"
  echo "CPU time per request (user + system); ratios: Lua / other for req/s, other / Lua for CPU."
  echo
  printf '%-8s %-6s %9s %7s %8s\n' size server "req/s" "MB/s" "us/req"
  local row sz sv r m u
  declare -A rps us
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r sz sv r m u <<<"$row"
    printf '%-8s %-6s %9s %7s %8s\n' "$sz" "$sv" "$r" "$m" "$u"
    rps["$sz/$sv"]="$r" us["$sz/$sv"]="$u"
  done
  echo
  for size in $SIZES; do
    local line="$size bytes:"
    if has_server lua && has_server nginx; then
      line+=" Lua/nginx req/s $(ratio "${rps[$size/lua]}" "${rps[$size/nginx]}"), CPU $(ratio "${us[$size/nginx]}" "${us[$size/lua]}");"
    fi
    if has_server lua && has_server c; then
      line+=" Lua/C req/s $(ratio "${rps[$size/lua]}" "${rps[$size/c]}"), CPU $(ratio "${us[$size/c]}" "${us[$size/lua]}");"
    fi
    if [ "$line" != "$size bytes:" ]; then echo "$line"; fi
  done
}

main "$@"
