#!/usr/bin/env bash
# The whole test suite against a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (glue and Mongoose): C++ tests, the Lua tests
# under LuaJIT with the ASan runtime preloaded (see tests/CMakeLists.txt),
# the corpus replay and the leak check under LeakSanitizer. Any sanitizer
# report aborts the test it happens in, which fails the run.
#   BUILD_DIR=build-asan (default)   where to build
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-asan}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The OpenResty libraries the test_ngx_* tests use are unpacked per build
# folder (the packages are already there when test.sh ran first).
BUILD_DIR="$BUILD_DIR" bash scripts/setup-deps.sh --with-test-tools
cmake -S . -B "$BUILD_DIR" -DMGFFI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DMGFFI_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
cd "$BUILD_DIR"
# Excluded: label "build" (install and configure tests: they configure and
# build separate, non-sanitized trees and test the build system, not the
# code; the main run covers them).
ctest --output-on-failure --timeout 600 -LE build
