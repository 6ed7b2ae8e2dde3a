#!/usr/bin/env bash
# Soak test (not a unit test): one server process (bench/soak_server.lua)
# serves SOAK_REQUESTS keep-alive HTTP requests (wrk, SOAK_CONNECTIONS
# connections, in rounds until the server has served that many) and then SOAK_WS WebSocket
# connect/message/close cycles (bench/soak_ws.py). Prints the server's RSS
# cold (just started), after a short warm-up and at the end, and the error
# counts. Fails on any error, on a request or message count that does not
# match, or on RSS growth of SOAK_MAX_GROWTH percent or more, measured from
# after the warm-up (the leak check). The growth from the cold start is
# printed too, not checked: most of it is the warm-up itself (the Lua heap,
# JIT-compiled code, connection and request buffers reaching their working
# size), so it is large however long the soak runs.
#   bash bench/soak.sh                                   full run (1M + 10k)
#   SOAK_REQUESTS=20000 SOAK_WS=200 bash bench/soak.sh   quick run
# Also: WARMUP_REQUESTS (default 20000), WARMUP_WS (default 200),
# SOAK_CONNECTIONS (default 50), BUILD_DIR (default build), LUAJIT (default luajit).
LOG_TAG=soak
BUILD_DIR="${BUILD_DIR:-build}"
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
SOAK_REQUESTS="${SOAK_REQUESTS:-1000000}"
SOAK_WS="${SOAK_WS:-10000}"
SOAK_CONNECTIONS="${SOAK_CONNECTIONS:-50}"
SOAK_MAX_GROWTH="${SOAK_MAX_GROWTH:-5}"
WARMUP_REQUESTS="${WARMUP_REQUESTS:-20000}"
WARMUP_WS="${WARMUP_WS:-200}"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
need_build

# Not pinned: the server and wrk -t2 share the machine's CPUs.
scripts/lua-env.sh "$LUAJIT" bench/soak_server.lua "$WORK_DIR/port" 2>"$WORK_DIR/server.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 100); do [ -f "$WORK_DIR/port" ] && break; sleep 0.1; done
PORT="$(cat "$WORK_DIR/port")"
URL="http://127.0.0.1:$PORT"

# wrk runs for a duration, not a count: run it in rounds sized from the
# measured rate until the server has served the requests asked for (at
# most 200 rounds). Socket errors and non-2xx responses are summed.
stat() { curl -sS -m 5 "$URL/stats" | awk -v k="$1" '$1 == k { print $2 }'; }
WRK_ERRORS=0
run_requests() { # count log_file; sets SERVED
  local want="$1" log="$2" base done_ secs=1 rate round=0
  base="$(stat requests)"
  : >"$log"
  while :; do
    done_=$(( $(stat requests) - base ))
    [ "$done_" -ge "$want" ] && break
    round=$((round + 1))
    [ "$round" -le 200 ] || { echo "soak: wrk rounds exhausted" >&2; WRK_ERRORS=$((WRK_ERRORS + 1)); break; }
    wrk -t2 -c"$SOAK_CONNECTIONS" -d"${secs}s" "$URL/hello" >"$WORK_DIR/round.txt"
    cat "$WORK_DIR/round.txt" >>"$log"
    if grep -qE "Socket errors|Non-2xx" "$WORK_DIR/round.txt"; then WRK_ERRORS=$((WRK_ERRORS + 1)); fi
    rate="$(awk '/^Requests\/sec/ { printf "%d", $2 }' "$WORK_DIR/round.txt")"
    [ "${rate:-0}" -gt 0 ] || rate=1000
    secs=$(( (want - ($(stat requests) - base)) / rate + 1 ))
    [ "$secs" -le 60 ] || secs=60
  done
  SERVED=$(( $(stat requests) - base ))
}

echo "soak: server pid $SERVER_PID on $URL"
RSS0="$(rss_kb "$SERVER_PID")"
echo "soak: warm-up: $WARMUP_REQUESTS requests, $WARMUP_WS WebSocket cycles"
run_requests "$WARMUP_REQUESTS" "$WORK_DIR/warm.txt"
python3 bench/soak_ws.py "$PORT" "$WARMUP_WS" >"$WORK_DIR/warm-ws.txt"
REQ0="$(stat requests)"; MSG0="$(stat messages)"
RSS1="$(rss_kb "$SERVER_PID")"
echo "soak: RSS cold ${RSS0} kB, after warm-up (start) ${RSS1} kB"

start=$(date +%s)
echo "soak: $SOAK_REQUESTS keep-alive requests over $SOAK_CONNECTIONS connections"
run_requests "$SOAK_REQUESTS" "$WORK_DIR/wrk.txt"
served="$SERVED"
echo "soak: served $served requests in $(grep -c "requests in" "$WORK_DIR/wrk.txt") wrk rounds;" \
  "rates (req/s): $(awk '/^Requests\/sec/ { printf "%d ", $2 }' "$WORK_DIR/wrk.txt")"
RSS2="$(rss_kb "$SERVER_PID")"
echo "soak: RSS after HTTP ${RSS2} kB"
echo "soak: $SOAK_WS WebSocket connect/message/close cycles"
WSOUT="$(python3 bench/soak_ws.py "$PORT" "$SOAK_WS")"
echo "soak: $WSOUT"
sleep 0.5
RSS3="$(rss_kb "$SERVER_PID")"
end=$(date +%s)

REQ1="$(stat requests)"; MSG1="$(stat messages)"
OPENED="$(stat opened)"; CLOSED="$(stat closed)"; SERR="$(stat errors)"; LUAKB="$(stat lua_kb)"
echoed=$((MSG1 - MSG0))
wrk_resp="$(awk '/ requests in / { s += $1 } END { print s + 0 }' "$WORK_DIR/wrk.txt")"
wrk_bad="$(grep -c "Non-2xx" "$WORK_DIR/wrk.txt" || true)"
sock_err="$(grep -c "Socket errors" "$WORK_DIR/wrk.txt" || true)"
ws_err="$(echo "$WSOUT" | awk '{ print $4 }')"
growth="$(awk -v a="$RSS1" -v b="$RSS3" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')"
cold_growth="$(awk -v a="$RSS0" -v b="$RSS3" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')"

echo "== soak results ($((end - start)) s)"
echo "requests served:     $served of $((REQ1 - REQ0)) in total (wrk counted $wrk_resp; rounds with non-2xx: $wrk_bad, with socket errors: $sock_err)"
echo "ws cycles:           $SOAK_WS ($echoed messages echoed, $ws_err client errors; opened $OPENED, closed $CLOSED in total)"
echo "server errors:       $SERR (Lua heap after GC: $LUAKB kB)"
echo "RSS start/end:       $RSS1 kB -> $RSS3 kB (growth $growth %, goal < $SOAK_MAX_GROWTH %); after HTTP $RSS2 kB"
echo "RSS cold/end:        $RSS0 kB -> $RSS3 kB (growth $cold_growth %, not checked: mostly the warm-up, see RSS start/end)"
fail=0
[ "$served" -ge "$SOAK_REQUESTS" ] || { echo "soak: FAIL: fewer requests served than asked"; fail=1; }
[ "$((wrk_bad + sock_err + WRK_ERRORS))" = 0 ] || { echo "soak: FAIL: HTTP errors"; fail=1; }
[ "$ws_err:$echoed" = "0:$SOAK_WS" ] || { echo "soak: FAIL: WebSocket errors"; fail=1; }
[ "$SERR" = 0 ] || { echo "soak: FAIL: server logged errors"; fail=1; }
awk -v g="$growth" -v max="$SOAK_MAX_GROWTH" 'BEGIN { exit !(g < max) }' ||
  { echo "soak: FAIL: RSS grew $growth %"; fail=1; }
[ "$fail" = 0 ] && echo "soak: OK"
exit "$fail"
