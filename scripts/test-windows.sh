#!/usr/bin/env bash
# The Windows build and its Lua tests, from Debian (docs/windows.md):
# installs mingw-w64, Wine and Debian's luajit, lua-cjson and pcre2 source
# packages (as root), cross-builds mongoose_ffi.dll (cmake/mingw-w64.cmake,
# Mongoose's builtin TLS), luajit.exe + lua51.dll, cjson.dll and
# libpcre2-8.dll from those sources, then runs the Lua tests
# as `wine luajit.exe tests/lua/test_x.lua` through CTest (tests/wine),
# whose summary ends the output. Everything goes under build-windows/
# (or $WIN_BUILD_DIR); the source package is never copied into the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${WIN_BUILD_DIR:-build-windows}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
TRIPLET=x86_64-w64-mingw32
JOBS="$(nproc)"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ---- packages: the cross compiler, zlib for it, Wine, the source package ----
# The Linux build's own deps (Mongoose's source, curl, python3) come from
# scripts/setup-deps.sh.
bash scripts/setup-deps.sh
missing=()
for p in g++-mingw-w64-x86-64-posix gcc-mingw-w64-x86-64-posix libz-mingw-w64-dev wine wine64 \
         dpkg-dev make cmake ninja-build curl python3; do
  have_pkg "$p" || missing+=("$p")
done
# deb-src for bookworm (apt-get source luajit), once.
if ! grep -rqs "^Types: deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
  $SUDO tee /etc/apt/sources.list.d/mongoose-ffi-bookworm-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  NEED_UPDATE=1
fi
if [ "${#missing[@]}" -gt 0 ] || [ -n "${NEED_UPDATE:-}" ]; then
  $SUDO apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== Installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- LuaJIT for Windows, from Debian's source package -----------------------
LJ_EXE="$OUT/luajit/luajit.exe"
if [ ! -f "$LJ_EXE" ] || [ ! -f "$OUT/luajit/lua51.dll" ]; then
  echo "== Cross-building LuaJIT for Windows (Debian's luajit source package)"
  mkdir -p "$OUT/src"
  if ! ls -d "$OUT"/src/luajit-*/src >/dev/null 2>&1; then
    (cd "$OUT/src" && apt-get source -qq luajit >/dev/null 2>&1) ||
      (cd "$OUT/src" && apt-get source luajit)
  fi
  LJ_SRC="$(ls -d "$OUT"/src/luajit-*/ | head -n 1)"
  make -C "$LJ_SRC" -j"$JOBS" HOST_CC=gcc CROSS="$TRIPLET-" TARGET_SYS=Windows \
    BUILDMODE=dynamic amalg >"$OUT/luajit-build.log" 2>&1 ||
    { tail -n 30 "$OUT/luajit-build.log"; exit 1; }
  mkdir -p "$OUT/luajit"
  cp "$LJ_SRC/src/luajit.exe" "$LJ_SRC/src/lua51.dll" "$OUT/luajit/"
fi

# ---- cjson.dll (mongoose.web's JSON), from Debian's lua-cjson source ---------
if [ ! -f "$OUT/luajit/cjson.dll" ]; then
  echo "== Cross-building lua-cjson for Windows (Debian's lua-cjson source package)"
  if ! ls -d "$OUT"/src/lua-cjson-*/ >/dev/null 2>&1; then
    (cd "$OUT/src" && apt-get source -qq lua-cjson >/dev/null 2>&1) ||
      (cd "$OUT/src" && apt-get source lua-cjson)
  fi
  CJ_SRC="$(ls -d "$OUT"/src/lua-cjson-*/ | head -n 1)"
  LJ_SRC="$(ls -d "$OUT"/src/luajit-*/ | head -n 1)"
  rm -rf "$OUT/src/cjson-build" && mkdir -p "$OUT/src/cjson-build"
  cp "$CJ_SRC"/*.c "$CJ_SRC"/*.h "$OUT/src/cjson-build/"
  # Built against LuaJIT's headers, which declare luaL_setfuncs: the copy
  # drops lua-cjson's own Lua 5.1 fallback of it.
  sed -i 's/^#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 502$/#if 0/' \
    "$OUT/src/cjson-build/lua_cjson.c"
  (cd "$OUT/src/cjson-build" &&
    "$TRIPLET-gcc-posix" -O2 -shared -o cjson.dll lua_cjson.c strbuf.c fpconv.c \
      -I"$LJ_SRC/src" -L"$LJ_SRC/src" -llua51 >"$OUT/cjson-build.log" 2>&1) ||
    { tail -n 30 "$OUT/cjson-build.log"; exit 1; }
  cp "$OUT/src/cjson-build/cjson.dll" "$OUT/luajit/"
fi

# ---- libpcre2-8.dll (ngx.re), from Debian's pcre2 source --------------------
if [ ! -f "$OUT/luajit/libpcre2-8.dll" ]; then
  echo "== Cross-building PCRE2 for Windows (Debian's pcre2 source package)"
  if ! ls -d "$OUT"/src/pcre2-*/ >/dev/null 2>&1; then
    (cd "$OUT/src" && apt-get source -qq pcre2 >/dev/null 2>&1) || (cd "$OUT/src" && apt-get source pcre2)
  fi
  PCRE_SRC="$(ls -d "$OUT"/src/pcre2-*/ | grep -v pcre2-build | head -n 1)"
  { cmake -S "$PCRE_SRC" -B "$OUT/src/pcre2-build" -G Ninja \
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64.cmake" -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=ON -DBUILD_STATIC_LIBS=OFF -DPCRE2_BUILD_PCRE2GREP=OFF \
      -DPCRE2_BUILD_TESTS=OFF -DPCRE2_SUPPORT_JIT=ON -DCMAKE_C_FLAGS=-static-libgcc &&
    cmake --build "$OUT/src/pcre2-build" -j"$JOBS"; } >"$OUT/pcre2-build.log" 2>&1 ||
    { tail -n 30 "$OUT/pcre2-build.log"; exit 1; }
  cp "$OUT/src/pcre2-build/libpcre2-8.dll" "$OUT/luajit/"
fi

# ---- mongoose_ffi.dll -------------------------------------------------------
echo "== Cross-building mongoose_ffi.dll (mingw-w64, MG_ARCH_WIN32, WSAPoll, builtin TLS)"
cmake -S . -B "$OUT/lib" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DMGFFI_TLS=builtin -DMGFFI_BUILD_TESTS=OFF -DMGFFI_BUILD_BENCH=OFF \
  >/dev/null
cmake --build "$OUT/lib" -j"$JOBS"
# Debian's OpenResty libraries for the test_ngx_* tests (into the folder
# the tests take as MGFFI_BUILD_DIR), as scripts/test.sh has them.
BUILD_DIR="$OUT/lib" bash scripts/setup-deps.sh --with-test-tools
# mongoose.web's compression loads zlib1.dll (Debian's libz-mingw-w64).
cp "/usr/$TRIPLET/lib/zlib1.dll" "$OUT/luajit/"

# ---- Wine: a prefix of its own ----------------------------------------------
export WINEPREFIX="$OUT/wineprefix" WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "== Creating the Wine prefix $WINEPREFIX"
  wineboot -i >/dev/null 2>&1
  wineserver -w
fi
echo "LuaJIT: $(wine "$LJ_EXE" -v 2>&1 | tr -d '\r')"

# ---- the tests ----------------------------------------------------------------
cmake -S tests/wine -B "$OUT/tests" -DMGFFI_SOURCE_DIR="$ROOT" -DMGFFI_WINDOWS_BUILD="$OUT/lib" \
  -DMGFFI_LUAJIT_EXE="$LJ_EXE" -DMGFFI_WINEPREFIX="$WINEPREFIX" >/dev/null
rm -rf "$OUT/tests/tmp" && mkdir -p "$OUT/tests/tmp"
cd "$OUT/tests"
# One wineserver for the whole run: no start-up per test, and no test
# meeting a server that is shutting down. Its services (services.exe,
# winedevice.exe) start with the first Wine program and live as long as
# the server: started here, they hold /dev/null, not the output pipe of
# the first test (which CTest would wait on until the run ends).
wineserver -k 2>/dev/null || true
wineserver -p
wine cmd /c exit </dev/null >/dev/null 2>&1 || true
status=0
# One test at a time by default: the tests' timing bounds are written for
# Linux, and Wine adds latency when several run at once.
ctest --output-on-failure -j"${WIN_TEST_JOBS:-1}" "$@" || status=$?
wineserver -k 2>/dev/null || true
exit "$status"
