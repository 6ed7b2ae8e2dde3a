#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (the glue in src/ and Mongoose
# compiled in, with ASan + UBSan) using Debian's clang and runs each for
# FUZZ_SECONDS (default 60) from its corpus: fuzz_http_server (bytes from a
# client to HTTP listeners, tests/fuzz/corpus) and fuzz_ws (WebSocket frame
# sequences both ways, tests/fuzz/corpus_ws). New inputs go to a scratch
# directory, not the repo; a crash leaves its input in $FUZZ_DIR (default
# build-fuzz) and fails.
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh            longer runs
#   FUZZ_TARGETS=ws bash scripts/fuzz.sh             one target
#   bash scripts/fuzz.sh ws build-fuzz/crash-...     replays one input
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_DIR="${FUZZ_DIR:-build-fuzz}"
FUZZ_TARGETS="${FUZZ_TARGETS:-http_server ws}"
CXX="${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}"
CC="${FUZZ_CC:-$(command -v clang-14 || command -v clang)}"
MONGOOSE_DIR="${MONGOOSE_DIR:-/usr/src}"
MONGOOSE_INC="${MONGOOSE_INC:-/usr/include}"
mkdir -p "$FUZZ_DIR/obj" "$FUZZ_DIR/generated"

# The same Mongoose settings as CMakeLists.txt (they change struct
# layouts), without TLS.
DEFS=(-DMG_ARCH=MG_ARCH_UNIX -DMG_ENABLE_EPOLL=1 -DMG_ENABLE_IPV6=1 -DMG_ENABLE_DIRLIST=1
      -DMG_IO_SIZE=16384 -DMG_MAX_RECV_SIZE=16777216 -DMG_MAX_HTTP_HEADERS=64
      -DMG_SOCK_LISTEN_BACKLOG_SIZE=1024 -DMGFFI_DEFAULT_MAX_BODY=8388608ULL
      -DMG_TLS=MG_TLS_NONE)
SAN=(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
     -fno-omit-frame-pointer -g -O1)
INC=(-Iinclude -Isrc -I"$FUZZ_DIR/generated" -I"$MONGOOSE_INC")

echo "fuzz: building with $CXX"
cmake -DHEADER=include/mongoose_ffi.h -DOUTPUT="$FUZZ_DIR/generated/mgffi_layout.inc" \
  -P cmake/gen_layout.cmake
"$CC" "${SAN[@]}" "${DEFS[@]}" "${INC[@]}" -w -c "$MONGOOSE_DIR/mongoose.c" -o "$FUZZ_DIR/obj/mongoose.o"
objs=("$FUZZ_DIR/obj/mongoose.o")
for src in src/*.cpp; do
  obj="$FUZZ_DIR/obj/$(basename "$src" .cpp).o"
  "$CXX" -std=c++17 "${SAN[@]}" "${DEFS[@]}" "${INC[@]}" -c "$src" -o "$obj" &
  objs+=("$obj")
done
for target in $FUZZ_TARGETS; do
  "$CXX" -std=c++17 "${SAN[@]}" "${DEFS[@]}" "${INC[@]}" -c "tests/fuzz/fuzz_$target.cpp" \
    -o "$FUZZ_DIR/obj/fuzz_$target.o" &
done
wait
for target in $FUZZ_TARGETS; do
  "$CXX" -fsanitize=fuzzer,address,undefined "${objs[@]}" "$FUZZ_DIR/obj/fuzz_$target.o" \
    -lz -o "$FUZZ_DIR/fuzz_$target"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
if [ "$#" -gt 0 ]; then
  target="$1"
  shift
  exec "$FUZZ_DIR/fuzz_$target" "$@"
fi
for target in $FUZZ_TARGETS; do
  corpus=tests/fuzz/corpus
  max_len=8192
  if [ "$target" = ws ]; then
    corpus=tests/fuzz/corpus_ws
    max_len=16384
  fi
  mkdir -p "$FUZZ_DIR/new-corpus-$target"
  echo "fuzz: running fuzz_$target for ${FUZZ_SECONDS}s"
  status=0
  "$FUZZ_DIR/fuzz_$target" -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/$target-" \
    "$FUZZ_DIR/new-corpus-$target" "$corpus" >"$FUZZ_DIR/fuzz-$target.log" 2>&1 || status=$?
  # The harness's own notes, then libFuzzer's last words (the full log stays
  # in $FUZZ_DIR/fuzz-$target.log).
  grep '^fuzz: ' "$FUZZ_DIR/fuzz-$target.log" || true
  tail -n 25 "$FUZZ_DIR/fuzz-$target.log"
  if [ "$status" != 0 ]; then
    echo "fuzz: fuzz_$target FAILED (exit $status); inputs: $(ls "$FUZZ_DIR/$target"-* 2>/dev/null | tr '\n' ' ')" >&2
    exit "$status"
  fi
  echo "fuzz: fuzz_$target clean after ${FUZZ_SECONDS}s"
done
