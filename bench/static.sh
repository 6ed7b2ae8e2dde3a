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
LOG_TAG=static
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-16}"
PORT_BASE="${PORT_BASE:-8141}"
SERVERS="${SERVERS:-lua c nginx}"
SIDES="$SERVERS"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

SIZES="${SIZES:-1024 65536 1048576}"
ROWS=()  # "size|server|rps|mbps|us"

# ---- setup ---------------------------------------------------------------------

# need_nginx_light: NGINX, or nginx-light installed (as root with apt-get).
need_nginx_light() {
  NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
  [ -x "$NGINX" ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing nginx-light"
    timeout 600 apt-get install -y nginx-light >/dev/null || die "apt-get install nginx-light failed"
    # Debian starts the packaged service: this benchmark runs its own.
    if command -v systemctl >/dev/null; then systemctl stop nginx 2>/dev/null || true; fi
    NGINX=/usr/sbin/nginx
  else
    die "nginx is missing (apt-get install nginx-light, as root), or leave it out: SERVERS=\"lua c\""
  fi
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
  print_header "static files: Lua API vs pure-C Mongoose vs nginx"
  echo "wrk:      $(wrk -v 2>&1 | head -n1)"
  if has_side nginx; then
    echo "nginx:    $("$NGINX" -v 2>&1 | head -n1) (sendfile on, 1 worker, open_file_cache" \
      "$([ "${NGINX_OPEN_FILE_CACHE:-0}" = 1 ] && echo on || echo off))"
  fi
  echo "servers:  $SERVERS (pinned to CPU $SERVER_CPU; wrk -t1 -c$CONNECTIONS on CPU $CLIENT_CPU)"
  echo "runs:     one of ${DURATION}s per server and size, after a ${WARMUP}s warm-up"
}

# ---- servers and wrk -----------------------------------------------------------

# start_servers: each of SERVERS as its side, on its port, ready once it
# serves the first of SIZES.
start_servers() {
  local port="$PORT_BASE" s file
  file="f$(echo "$SIZES" | awk '{ print $1 }').bin"
  for s in lua c nginx; do
    if has_side "$s"; then
      case "$s" in
        lua) serve lua lua "http://127.0.0.1:$port/$file" \
          scripts/lua-env.sh "$LUAJIT" bench/static_server.lua "$WORK_DIR/www" "$port" ;;
        c) serve c c "http://127.0.0.1:$port/$file" "$BUILD_DIR/bench_c_static" "$WORK_DIR/www" "$port" ;;
        nginx)
          write_nginx_conf "$port"
          serve nginx nginx "http://127.0.0.1:$port/$file" \
            "$NGINX" -p "$WORK_DIR/nginx" -c "$WORK_DIR/nginx/nginx.conf"
          ;;
      esac
    fi
    port=$((port + 1))
  done
}

# measure SIDE SIZE: a warm-up (WARMUP s) and a measured run (DURATION s) of
# wrk on /fSIZE.bin; adds a row with req/s, MB/s of body (10^6 bytes) and
# the server's CPU microseconds per request (server and children).
measure() {
  local side="$1" size="$2" url="${SIDE_URL[$1]%/*}/f$2.bin" mbps us
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$url" "$CONNECTIONS" "$WARMUP" "$side-warmup-$size" "${SIDE_PID[$side]}"
  fi
  run_wrk "$url" "$CONNECTIONS" "$DURATION" "$side-$size" "${SIDE_PID[$side]}"
  mbps="$(awk -v r="$WRK_RPS" -v s="$size" 'BEGIN { printf "%.0f", r * s / 1e6 }')"
  us="$(us_per "$WRK_TICKS" "$WRK_REQUESTS" 1)"
  log "$size bytes, $side: $WRK_RPS req/s, $mbps MB/s, $us us CPU/req"
  ROWS+=("$size|$side|$WRK_RPS|$mbps|$us")
}

# ---- main ----------------------------------------------------------------------

print_table() {
  local row sz sv r m u size line
  local -A rps us
  echo
  echo "req/s: wrk's requests/s; MB/s: body bytes (10^6) per second; us/req: the server's"
  echo "CPU time per request (user + system); ratios: Lua / other for req/s, other / Lua for CPU."
  echo
  printf '%-8s %-6s %9s %7s %8s\n' size server "req/s" "MB/s" "us/req"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r sz sv r m u <<<"$row"
    printf '%-8s %-6s %9s %7s %8s\n' "$sz" "$sv" "$r" "$m" "$u"
    rps["$sz/$sv"]="$r" us["$sz/$sv"]="$u"
  done
  echo
  for size in $SIZES; do
    line="$size bytes:"
    if has_side lua && has_side nginx; then
      line+=" Lua/nginx req/s $(ratio "${rps[$size/lua]}" "${rps[$size/nginx]}"), CPU $(ratio "${us[$size/nginx]}" "${us[$size/lua]}");"
    fi
    if has_side lua && has_side c; then
      line+=" Lua/C req/s $(ratio "${rps[$size/lua]}" "${rps[$size/c]}"), CPU $(ratio "${us[$size/c]}" "${us[$size/lua]}");"
    fi
    if [ "$line" != "$size bytes:" ]; then echo "$line"; fi
  done
}

main() {
  local s size
  need_whole 1 DURATION
  need_whole 0 WARMUP
  for s in $SERVERS; do
    case "$s" in lua | c | nginx) ;; *) die "SERVERS: unknown server $s (lua, c, nginx)" ;; esac
  done
  need_tools wrk
  if has_side nginx; then need_nginx_light; fi
  build bench_c_static
  make_files
  print_setup
  start_servers
  for size in $SIZES; do
    for s in $SERVERS; do
      measure "$s" "$size"
    done
  done
  # shellcheck disable=SC2086
  stop_sides $SERVERS
  print_table
}

main "$@"
