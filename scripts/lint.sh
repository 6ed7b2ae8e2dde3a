#!/usr/bin/env bash
# Checks C++ formatting (clang-format, .clang-format) and Lua (luacheck,
# .luacheckrc). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
clang-format --dry-run -Werror src/*.cpp src/*.hpp include/*.h tests/cpp/*.cpp tests/cpp/*.hpp tests/fuzz/*.cpp tests/fuzz/*.hpp bench/*.c bench/*.h 2>&1
luacheck --no-color -q lua tests/lua tests/wine examples bench
echo "lint: clean"
