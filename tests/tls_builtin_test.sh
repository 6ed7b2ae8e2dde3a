#!/usr/bin/env bash
# Build check of Mongoose's built-in TLS (-DMGFFI_TLS=builtin): configures a
# separate build folder, builds the library alone, and runs LuaJIT HTTPS round
# trips through it (MONGOOSE_FFI_LIB pointing at that library):
#   1. the builtin server answers curl --cacert (the test CA) over TLS 1.3;
#   2. the library's own https:// client (tls.insecure) reads from that server.
#
#   bash tests/tls_builtin_test.sh SOURCE_DIR [BUILD_DIR]
#
# BUILD_DIR defaults to a temporary folder, removed at the end. Keys and
# certificates are made here with openssl (EC prime256v1: the builtin TLS
# reads "EC PRIVATE KEY" and PKCS#8 EC keys) and removed at the end.
#
# Limits of the builtin TLS this test works around:
# - a client that verifies certificates first sets the clock by SNTP
#   (udp://time.google.com:123); with loopback only that fails ("time sync
#   failed"), so round trip 2 skips verification (tls.insecure);
# - its ECDSA CertificateVerify is sometimes DER-encoded with a leading zero
#   byte, which OpenSSL rejects ("bad signature", about one handshake in
#   250-600), so curl retries (each handshake signs a new transcript);
# - even without verification it checks the server certificate's validity
#   dates against mg_now(), which without SNTP counts from boot (a date in
#   1970), so the server certificate here is valid from 1970-01-02.
set -euo pipefail
SOURCE_DIR="$(cd "${1:?usage: tls_builtin_test.sh SOURCE_DIR [BUILD_DIR]}" && pwd)"
work="$(mktemp -d /tmp/mgffi-tls-builtin.XXXXXX)"
trap 'rm -rf "$work"' EXIT
BUILD_DIR="${2:-$work/build}"

cmake -S "$SOURCE_DIR" -B "$BUILD_DIR" -DMGFFI_TLS=builtin -DMGFFI_BUILD_TESTS=OFF \
  -DMGFFI_BUILD_BENCH=OFF >"$work/configure.log" 2>&1 || {
  cat "$work/configure.log" >&2
  echo "tls builtin test: configuring failed" >&2
  exit 1
}
cmake --build "$BUILD_DIR" --target mongoose_ffi -j2 >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  echo "tls builtin test: building failed" >&2
  exit 1
}
test -f "$BUILD_DIR/mongoose_ffi.so"
grep -q "^MGFFI_TLS:STRING=builtin$" "$BUILD_DIR/CMakeCache.txt"

# A throwaway CA and a server certificate for localhost / 127.0.0.1.
pki="$work/pki"
mkdir -p "$pki"
(
  cd "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=mgffi builtin test CA" -out ca.pem
  openssl ecparam -name prime256v1 -genkey -noout -out srv.key
  openssl req -new -key srv.key -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out srv.csr
  touch index.txt
  echo 01 >serial
  cat >ca.cnf <<'EOF'
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any_name
copy_extensions = copy
unique_subject = no
[any_name]
commonName = supplied
EOF
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -startdate 19700102000000Z \
    -enddate 20991231000000Z -in srv.csr -out srv.pem
) >"$work/pki.log" 2>&1 || {
  cat "$work/pki.log" >&2
  echo "tls builtin test: making certificates failed" >&2
  exit 1
}

cat >"$work/roundtrip.lua" <<'EOF'
local T = require("testlib")
local mongoose = require("mongoose")
local pki = arg[1]
T.test("the library was built with the builtin TLS", function()
  T.eq(require("mongoose.tls").backend, "builtin")
end)
-- A manager with an HTTPS listener (the test certificate) answering
-- "builtin <path>".
local function https_server()
  local mgr = assert(mongoose.new_manager())
  return mgr, assert(mgr:http_listen("https://127.0.0.1:0", function(req)
    return 200, "builtin " .. req.path
  end, { tls = { cert = pki .. "/srv.pem", key = pki .. "/srv.key" } }))
end
T.test("builtin HTTPS server answers curl --cacert (TLS 1.3)", function()
  local mgr, l = https_server()
  local out, rc, err = T.run_client(mgr, "curl -sS --max-time 10 --retry 2 --retry-all-errors --retry-delay 0 --tlsv1.3 --cacert " .. T.q(pki .. "/ca.pem")
                                    .. " https://localhost:" .. l:port() .. "/curl", 15000)
  T.eq(rc, 0, "curl exit (" .. err .. ")")
  T.eq(out, "builtin /curl")
  mgr:close()
end)
T.test("builtin HTTPS server and the library's own https client (tls.insecure)", function()
  local mgr, l = https_server()
  local r, err = mgr:fetch("https://localhost:" .. l:port() .. "/own", { tls = { insecure = true }, timeout = 5000 })
  T.ok(r, "own client: " .. tostring(err))
  T.eq(r.body, "builtin /own")
  mgr:close()
end)
T.run()
EOF

cd "$SOURCE_DIR/tests/lua"
MONGOOSE_FFI_LIB="$BUILD_DIR/mongoose_ffi.so" \
  LUA_PATH="$SOURCE_DIR/lua/?.lua;$SOURCE_DIR/lua/?/init.lua;$SOURCE_DIR/tests/lua/?.lua;;" \
  LUA_CPATH="" timeout 120 luajit "$work/roundtrip.lua" "$pki"
