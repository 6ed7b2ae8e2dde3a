#!/usr/bin/env bash
# Builds the libFuzzer target tests/fuzz/fuzz_http_server.cpp (the glue in
# src/ and Mongoose compiled in, with ASan + UBSan) using Debian's clang
# and runs it for FUZZ_SECONDS (default 60) from the corpus in
# tests/fuzz/corpus. New inputs go to a scratch directory, not the repo;
# a crash leaves its input in $FUZZ_DIR (default build-fuzz) and fails.
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh        a longer run
#   bash scripts/fuzz.sh build-fuzz/crash-...    replays one input
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_DIR="${FUZZ_DIR:-build-fuzz}"
CXX="${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}"
CC="${FUZZ_CC:-$(command -v clang-14 || command -v clang)}"
MONGOOSE_DIR="${MONGOOSE_DIR:-/usr/src}"
MONGOOSE_INC="${MONGOOSE_INC:-/usr/include}"
mkdir -p "$FUZZ_DIR/obj" "$FUZZ_DIR/new-corpus"

# The same Mongoose settings as CMakeLists.txt (they change struct
# layouts), without TLS.
DEFS=(-DMG_ARCH=MG_ARCH_UNIX -DMG_ENABLE_EPOLL=1 -DMG_ENABLE_IPV6=1 -DMG_ENABLE_DIRLIST=1
      -DMG_IO_SIZE=16384 -DMG_MAX_RECV_SIZE=16777216 -DMG_MAX_HTTP_HEADERS=64
      -DMG_SOCK_LISTEN_BACKLOG_SIZE=1024 -DMGFFI_DEFAULT_MAX_BODY=8388608ULL
      -DMG_TLS=MG_TLS_NONE)
SAN=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
     -fno-omit-frame-pointer -g -O1)
INC=(-Iinclude -Isrc -I"$MONGOOSE_INC")

echo "fuzz: building with $CXX"
"$CC" "${SAN[@]}" "${DEFS[@]}" "${INC[@]}" -w -c "$MONGOOSE_DIR/mongoose.c" -o "$FUZZ_DIR/obj/mongoose.o"
objs=("$FUZZ_DIR/obj/mongoose.o")
for src in src/*.cpp tests/fuzz/fuzz_http_server.cpp; do
  obj="$FUZZ_DIR/obj/$(basename "$src" .cpp).o"
  "$CXX" -std=c++17 "${SAN[@]}" "${DEFS[@]}" "${INC[@]}" -c "$src" -o "$obj" &
  objs+=("$obj")
done
wait
"$CXX" -fsanitize=fuzzer,address,undefined "${objs[@]}" -o "$FUZZ_DIR/fuzz_http_server"

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
if [ "$#" -gt 0 ]; then
  exec "$FUZZ_DIR/fuzz_http_server" "$@"
fi
echo "fuzz: running for ${FUZZ_SECONDS}s"
"$FUZZ_DIR/fuzz_http_server" -max_total_time="$FUZZ_SECONDS" -max_len=8192 -timeout=20 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/" \
  "$FUZZ_DIR/new-corpus" tests/fuzz/corpus >"$FUZZ_DIR/fuzz.log" 2>&1
status=$?
# The harness's own notes, then libFuzzer's last words (the full log stays
# in $FUZZ_DIR/fuzz.log).
grep '^fuzz: ' "$FUZZ_DIR/fuzz.log" || true
tail -n 25 "$FUZZ_DIR/fuzz.log"
if [ "$status" != 0 ]; then
  echo "fuzz: FAILED (exit $status); inputs: $(ls "$FUZZ_DIR"/crash-* "$FUZZ_DIR"/leak-* "$FUZZ_DIR"/timeout-* 2>/dev/null | tr '\n' ' ')" >&2
  exit "$status"
fi
echo "fuzz: clean after ${FUZZ_SECONDS}s"
