#!/usr/bin/env bash
# Installs everything mongoose-ffi needs on a Debian (bookworm) machine, as root.
# Mongoose itself comes from Debian sid's mongoose-webserver-source package,
# pinned so that it is the only package ever taken from sid.
# Idempotent: on a machine that already has everything, it does nothing.
#
# Usage: scripts/setup-deps.sh [--luajit=luajit|luajit2] [--with-test-tools] [--with-bench-tools]
set -euo pipefail

LUAJIT_FLAVOR=""
WANT_TEST_TOOLS=0
WANT_BENCH_TOOLS=0
for arg in "$@"; do
  case "$arg" in
    --luajit=*) LUAJIT_FLAVOR="${arg#--luajit=}" ;;
    --with-test-tools) WANT_TEST_TOOLS=1 ;;
    --with-bench-tools) WANT_BENCH_TOOLS=1 ;;
    *) echo "setup-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
want() { for p in "$@"; do have_pkg "$p" || missing+=("$p"); done; }

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
}

# --- mongoose from sid, pinned -------------------------------------------------
if [ ! -f /usr/src/mongoose.c ] || [ ! -f /usr/include/mongoose.h ]; then
  if ! grep -rqs "Suites: sid" /etc/apt/sources.list.d/ 2>/dev/null; then
    $SUDO tee /etc/apt/sources.list.d/mongoose-ffi-sid.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  # Nothing comes from sid unless named here.
  $SUDO tee /etc/apt/preferences.d/mongoose-ffi-sid >/dev/null <<'PIN'
Package: *
Pin: release n=sid
Pin-Priority: -1

Package: mongoose-webserver-source
Pin: release n=sid
Pin-Priority: 990
PIN
  APT_UPDATED=0
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends mongoose-webserver-source
fi

# --- build and runtime deps from bookworm ---------------------------------------
want cmake g++ make pkg-config libssl-dev zlib1g-dev curl python3 libgtest-dev ca-certificates
# libuv bindings (Lua 5.1 C module, loads under luajit and luajit2): mongoose.luv and its tests.
want lua-luv
# JSON for mongoose.web (an optional dependency of the library: without it
# the JSON functions raise a clear error); zlib for its compression.
want lua-cjson zlib1g

# The library does not link against LuaJIT (it is loaded with ffi.load), so
# only the interpreter is needed. luajit and luajit2 conflict: asking for one
# makes apt replace the other.
case "$LUAJIT_FLAVOR" in
  "") if ! have_pkg luajit && ! have_pkg luajit2; then want luajit; fi ;;
  luajit) want luajit ;;
  luajit2) want luajit2 ;;
  *) echo "setup-deps: --luajit must be luajit or luajit2" >&2; exit 2 ;;
esac

if [ "$WANT_TEST_TOOLS" = 1 ]; then
  # What the tests run as peers and tools (tests/lua, tests/*.sh): luacheck
  # and clang-format (scripts/lint.sh), Python's websockets, headless
  # Chromium (test_browser), nc and socat, the openssl command (throwaway
  # certificates). A Lua test whose tool is missing exits 77: CTest
  # reports it as skipped, so every one of them belongs here.
  want lua-check clang-format python3-websockets chromium netcat-openbsd socat openssl
  # Hardening: valgrind (leak test), clang + libFuzzer runtime (scripts/fuzz.sh).
  want valgrind clang-14 libclang-rt-14-dev
fi
if [ "$WANT_BENCH_TOOLS" = 1 ]; then
  want wrk
fi

if [ "${#missing[@]}" -gt 0 ]; then
  apt_update
  # luajit and luajit2 conflict: apt swaps them as needed.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

