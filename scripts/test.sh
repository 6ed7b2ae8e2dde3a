#!/usr/bin/env bash
# Runs every test: installs what is missing (Debian, as root), builds,
# checks formatting and lint, and runs CTest (C++ and Lua tests).
#   --luajit=luajit|luajit2   swap the LuaJIT package first
#   --lua-only                run only the Lua tests (label "lua")
set -euo pipefail
cd "$(dirname "$0")/.."
setup_args=(--with-test-tools)
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --luajit=*) setup_args+=("$arg") ;;
    --lua-only) ctest_args+=(-L lua) ;;
    *) echo "test.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
bash scripts/setup-deps.sh "${setup_args[@]}"
bash scripts/lint.sh
bash scripts/build.sh
echo "LuaJIT: $(luajit -v)"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 300 "${ctest_args[@]}"
