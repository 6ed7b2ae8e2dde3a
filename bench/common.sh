# shellcheck shell=bash
# Shared by bench/redis.sh and bench/proxy.sh (sourced, not run): the
# settings, cleanup, servers pinned to CPU 0, wrk pinned to CPU 1, the
# server's CPU time per request from /proc, medians and ratios, and the
# nginx side (Debian's nginx-light + libnginx-mod-http-lua, installed on
# demand). The caller sets BENCH_NAME and defines bench_main.
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
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR

SERVER_CPU=0
CLIENT_CPU=1
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mgffi-bench.XXXXXX")"
PIDS=()
WRK_PID=
CLK_TCK="$(getconf CLK_TCK)"
LIBS_DIR="$BUILD_DIR/openresty-libs/usr/share/lua/5.1"

log() { echo "bench: $*" >&2; }
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

has_side() {
  case " $SIDES " in *" $1 "*) return 0 ;; esac
  return 1
}

need_tools() {
  if ! command -v wrk >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "wrk is missing (Debian: apt-get install wrk, as root)"
    log "installing wrk"
    timeout 300 apt-get install -y -qq wrk >/dev/null || die "apt-get install wrk failed"
  fi
  local tool
  for tool in curl taskset timeout "$LUAJIT"; do
    command -v "$tool" >/dev/null || die "$tool is missing"
  done
  [ "$(nproc)" -ge 2 ] || die "needs 2 CPUs; nproc is $(nproc)"
}

build() {
  if [ "$NO_BUILD" = 1 ]; then
    log "NO_BUILD=1: using the existing build in $BUILD_DIR"
  else
    log "building into $BUILD_DIR"
    BUILD_DIR="$BUILD_DIR" bash scripts/build.sh -DMGFFI_BUILD_BENCH=ON >/dev/null ||
      die "the build failed"
  fi
  [ -f "$BUILD_DIR/mongoose_ffi.so" ] || die "$BUILD_DIR/mongoose_ffi.so was not built"
}

# Debian's lua-nginx-* libraries, unpacked (not installed) under the build
# folder: both sides load nginx.redis from there.
need_openresty_libs() {
  [ -f "$LIBS_DIR/nginx/redis.lua" ] && return 0
  local debs
  debs="$(mktemp -d)"
  (cd "$debs" && apt-get download -qq lua-nginx-redis >/dev/null 2>&1) ||
    die "apt-get download lua-nginx-redis failed (apt-get update?)"
  mkdir -p "$BUILD_DIR/openresty-libs"
  dpkg-deb -x "$debs"/lua-nginx-redis_*.deb "$BUILD_DIR/openresty-libs"
  rm -rf "$debs"
}

# nginx with the Lua module when asked (lua = 1). Installing
# libnginx-mod-http-lua replaces Debian's luajit with luajit2 (a
# dependency): fine for a benchmark machine, not for a shared one.
need_nginx() {
  local want_lua="$1" pkgs=()
  command -v nginx >/dev/null || pkgs+=(nginx-light)
  if [ "$want_lua" = 1 ] && [ ! -f /usr/lib/nginx/modules/ngx_http_lua_module.so ]; then
    pkgs+=(libnginx-mod-http-lua)
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

# answers URL: true when an HTTP server answers 200 there.
answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" 2>/dev/null)" = 200 ]
}

# start_server NAME CPU URL COMMAND...: starts COMMAND pinned to CPU and
# waits (up to 10 s) until URL answers 200. Sets SERVER_PID.
start_server() {
  local name="$1" cpu="$2" url="$3" i
  shift 3
  taskset -c "$cpu" "$@" >"$WORK_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK_DIR/$name.log" >&2 || true
      die "$name exited before answering"
    fi
    answers "$url" && return 0
    sleep 0.1
  done
  cat "$WORK_DIR/$name.log" >&2 || true
  die "$name did not answer at $url within 10 s"
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run_wrk URL CONNECTIONS SECONDS NAME PID: sets WRK_RPS, WRK_US (the
# server's CPU microseconds per request) and WRK_BUSY (its CPU use, % of
# one core); warns about non-2xx answers and socket errors.
run_wrk() {
  local url="$1" conns="$2" secs="$3" name="$4" pid="$5"
  local out="$WORK_DIR/wrk-$name.txt" rc=0 t0 t1 w0 w1 requests
  t0="$(cpu_ticks "$pid")"
  w0="$(date +%s%N)"
  timeout $((secs + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${secs}s" "$url" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  t1="$(cpu_ticks "$pid")"
  w1="$(date +%s%N)"
  [ "$rc" -eq 0 ] || { cat "$out" >&2; die "wrk failed against $name (exit status $rc)"; }
  if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
    log "warning: $name: $(grep -e "Non-2xx" -e "Socket errors" "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  requests="$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$out")"
  if [ -z "$WRK_RPS" ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
    cat "$out" >&2
    die "no requests counted in wrk's output for $name"
  fi
  read -r WRK_US WRK_BUSY < <(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$requests" \
    -v ns="$((w1 - w0))" 'BEGIN { printf "%.2f %.0f\n", t / hz * 1e6 / n, t / hz * 1e11 / ns }')
}

median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# compare NAME: the servers of SIDE_URL[side] / SIDE_PID[side] (sides of
# SIDES) already answer. One warm-up each, then REPEAT rounds of wrk against
# each side in turn; prints the medians and, with both sides, the ratios.
declare -A SIDE_URL SIDE_PID
compare() {
  local name="$1" side r conns
  local -A rps us
  for side in $SIDES; do
    if [ "$WARMUP" -gt 0 ]; then
      run_wrk "${SIDE_URL[$side]}" 50 "$WARMUP" "$name-$side-warmup" "${SIDE_PID[$side]}"
    fi
  done
  for conns in $CONNECTIONS; do
    for side in $SIDES; do
      rps[$side]=""
      us[$side]=""
    done
    for ((r = 1; r <= REPEAT; r++)); do
      for side in $SIDES; do
        run_wrk "${SIDE_URL[$side]}" "$conns" "$DURATION" "$name-$side-c$conns-$r" "${SIDE_PID[$side]}"
        rps[$side]+=" $WRK_RPS"
        us[$side]+=" $WRK_US"
        log "$name, $conns connections, run $r/$REPEAT: $side $WRK_RPS req/s," \
          "$WRK_US us server CPU/req, server CPU ${WRK_BUSY}%"
      done
    done
    local line="$name, $conns connections:"
    local m_rps m_us
    for side in $SIDES; do
      # shellcheck disable=SC2086
      m_rps="$(median ${rps[$side]})"
      # shellcheck disable=SC2086
      m_us="$(median ${us[$side]})"
      RESULT_RPS[$side]="$m_rps"
      RESULT_US[$side]="$m_us"
      line+=" $side $m_rps req/s ($m_us us CPU/req);"
    done
    if has_side mongoose && has_side nginx; then
      line+=" ratio mongoose/nginx: req/s $(ratio "${RESULT_RPS[mongoose]}" "${RESULT_RPS[nginx]}"),"
      line+=" CPU per request (nginx/mongoose) $(ratio "${RESULT_US[nginx]}" "${RESULT_US[mongoose]}")"
    fi
    RESULTS+=("$line")
  done
}
declare -A RESULT_RPS RESULT_US
RESULTS=()

print_setup() {
  echo "== mongoose-ffi $BENCH_NAME benchmark"
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(nproc) CPUs)"
  echo "luajit:   $("$LUAJIT" -v 2>&1 | head -n1)"
  if has_side nginx; then
    echo "nginx:    $(nginx -v 2>&1 | head -n1)"
  fi
  echo "sides:    $SIDES; wrk -t1, ${DURATION}s runs after ${WARMUP}s warm-ups, median of $REPEAT"
  echo "pinning:  servers under test on CPU $SERVER_CPU; wrk and the shared back end on CPU $CLIENT_CPU"
}

print_results() {
  echo
  printf '%s\n' "${RESULTS[@]}"
}
