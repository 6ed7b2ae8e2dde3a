#!/usr/bin/env bash
# Runs a command with LUA_PATH/LUA_CPATH pointing at this checkout's Lua
# modules and the library in build/ (no install needed):
#   scripts/lua-env.sh luajit examples/demo_server.lua
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;${LUA_PATH:-;}"
export LUA_CPATH="$BUILD_DIR/?.so;${LUA_CPATH:-;}"
exec "$@"
