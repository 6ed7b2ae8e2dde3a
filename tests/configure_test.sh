#!/usr/bin/env bash
# Configuring without Mongoose fails with a message naming the Debian
# package; a Mongoose whose MG_VERSION is unsupported is refused.
set -euo pipefail
SOURCE_DIR="$1"
work="$(mktemp -d /tmp/mgffi-configure.XXXXXX)"
trap 'rm -rf "$work"' EXIT
passed=0

if cmake -S "$SOURCE_DIR" -B "$work/b1" -DMONGOOSE_DIR="$work/nothing-here" -DMGFFI_BUILD_TESTS=OFF >"$work/log1" 2>&1; then
  echo "configure succeeded without mongoose" >&2; exit 1
fi
grep -q "mongoose-webserver-source" "$work/log1" || { cat "$work/log1" >&2; exit 1; }
passed=$((passed + 1))

mkdir -p "$work/old"
sed 's/#define MG_VERSION "[0-9.]*"/#define MG_VERSION "6.18"/' /usr/include/mongoose.h >"$work/old/mongoose.h"
cp /usr/src/mongoose.c "$work/old/mongoose.c"
if cmake -S "$SOURCE_DIR" -B "$work/b2" -DMONGOOSE_DIR="$work/old" -DMGFFI_BUILD_TESTS=OFF >"$work/log2" 2>&1; then
  echo "configure accepted Mongoose 6.18" >&2; exit 1
fi
grep -q "supports 7.20" "$work/log2" || { cat "$work/log2" >&2; exit 1; }
passed=$((passed + 1))

# MONGOOSE_DIR pointing at a folder with both files is accepted.
mkdir -p "$work/copy"
cp /usr/include/mongoose.h /usr/src/mongoose.c "$work/copy/"
cmake -S "$SOURCE_DIR" -B "$work/b3" -DMONGOOSE_DIR="$work/copy" -DMGFFI_BUILD_TESTS=OFF >"$work/log3" 2>&1 \
  || { cat "$work/log3" >&2; exit 1; }
grep -q "Mongoose 7.23: $work/copy/mongoose.c" "$work/log3" || { cat "$work/log3" >&2; exit 1; }
passed=$((passed + 1))
echo "configure test: $passed passed, 0 failed"
