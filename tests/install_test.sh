#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then a LuaJIT program that
# finds the modules and the library through package.path/package.cpath
# conventions alone (no LUA_PATH tricks beyond the prefix) serves a request.
set -euo pipefail
BUILD_DIR="$1"
prefix="$(mktemp -d /tmp/mgffi-install.XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$BUILD_DIR" --prefix "$prefix" >/dev/null
test -f "$prefix/lib/lua/5.1/mongoose_ffi.so"
test -f "$prefix/share/lua/5.1/mongoose/init.lua"
test -f "$prefix/include/mongoose_ffi.h"
out="$(env -u LUA_PATH -u LUA_CPATH luajit -e "
package.path = '$prefix/share/lua/5.1/?.lua;$prefix/share/lua/5.1/?/init.lua;' .. package.path
package.cpath = '$prefix/lib/lua/5.1/?.so;' .. package.cpath
local mongoose = require('mongoose')
local mgr = assert(mongoose.new_manager())
local l = assert(mgr:http_listen('http://127.0.0.1:0', function() return 200, 'installed ok' end))
local r = assert(mgr:fetch('http://127.0.0.1:' .. l:port() .. '/'))
io.write(r.body)
mgr:close()
")"
if [ "$out" != "installed ok" ]; then
  echo "unexpected output: $out" >&2
  exit 1
fi
# The dynamic loader finds libmongoose_ffi.so (a link) for ffi.load's fallback.
test -L "$prefix/lib/libmongoose_ffi.so"
version="$(env -u LUA_PATH -u LUA_CPATH LD_LIBRARY_PATH="$prefix/lib" luajit -e "
package.path = '$prefix/share/lua/5.1/?.lua;$prefix/share/lua/5.1/?/init.lua;' .. package.path
package.cpath = ''
io.write(require('mongoose').mongoose_version)")"
if [ "$version" != "7.23" ]; then
  echo "loading through the dynamic loader failed: $version" >&2
  exit 1
fi
echo "install test: 2 passed, 0 failed"
