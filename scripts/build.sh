#!/usr/bin/env bash
# Configures and builds mongoose-ffi into build/ (or $BUILD_DIR).
# Extra arguments go to CMake's configure step, e.g. -DMONGOOSE_DIR=/path.
# BUILD_TYPE: the CMake build type (default RelWithDebInfo); BUILD_TARGET:
# build that target alone (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
