-- What the TLS tests share: a throwaway PKI made with openssl when the
-- module is first required (a CA, server and client certificates, a
-- self-signed server certificate and an unrelated CA; EC prime256v1 keys,
-- which the builtin TLS can use too), removed when the test ends; no key
-- is committed. Requiring it skips the test (T.skip) in a build without
-- TLS.
local T = require("testlib")
local mongoose = require("mongoose")
local tls = require("mongoose.tls")

if tls.backend == "none" then
  T.skip("this library was built without TLS (-DMGFFI_TLS=none)")
end

local _M = {}

local pki = T.run_client(nil, "mktemp -d /tmp/mgffi-tls.XXXXXX"):match("%S+")
assert(pki and pki:find("^/tmp/mgffi%-tls%."), "mktemp failed")

-- Removes the keys whatever happens (T.run and T.skip end with T.exit).
T.on_exit(function()
  os.execute("rm -rf " .. T.q(pki))
end)

local function sh(cmd)
  local out, rc, err = T.run_client(nil, "cd " .. T.q(pki) .. " && " .. cmd, 30000)
  assert(rc == 0, "command failed (" .. tostring(rc) .. "): " .. cmd .. "\n" .. out .. err)
  return out
end

local function file(name)
  return pki .. "/" .. name
end

local EC = "openssl ecparam -name prime256v1 -genkey -noout -out "
-- A CA; a server certificate for localhost and 127.0.0.1; a client
-- certificate; a self-signed server certificate; an unrelated CA.
sh(EC .. "ca.key && openssl req -x509 -new -key ca.key -sha256 -days 2 "
   .. "-subj '/CN=mgffi test CA' -out ca.pem")
sh(EC .. "srv.key && openssl req -new -key srv.key -subj '/CN=localhost' -out srv.csr")
T.write_file(file("srv.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
             .. "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 "
   .. "-extfile srv.ext -out srv.pem")
sh(EC .. "cli.key && openssl req -new -key cli.key -subj '/CN=mgffi client' -out cli.csr")
T.write_file(file("cli.ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
             .. "extendedKeyUsage=clientAuth\n")
sh("openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 "
   .. "-extfile cli.ext -out cli.pem")
sh(EC .. "self.key && openssl req -x509 -new -key self.key -sha256 -days 2 -subj '/CN=localhost' "
   .. "-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -out self.pem")
sh(EC .. "other.key && openssl req -x509 -new -key other.key -sha256 -days 2 "
   .. "-subj '/CN=other CA' -out other.pem")

local CA, SRV_CERT, SRV_KEY = file("ca.pem"), file("srv.pem"), file("srv.key")
local CLI_CERT, CLI_KEY = file("cli.pem"), file("cli.key")
local SERVER_TLS = { cert = SRV_CERT, key = SRV_KEY }

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

function _M.hello(req)
  return 200, "secure " .. req.path, { ["Content-Type"] = "text/plain" }
end

-- An HTTPS server on 127.0.0.1 (port 0); returns mgr, listener, port.
function _M.https_server(opts, handler)
  local mgr = assert(mongoose.new_manager())
  local l = assert(mgr:http_listen("https://127.0.0.1:0", handler or _M.hello, opts or { tls = SERVER_TLS }))
  return mgr, l, l:port()
end

-- Mongoose's builtin TLS (7.23) encodes the ECDSA signature of its
-- CertificateVerify in DER without trimming a leading zero byte, which
-- OpenSSL rejects ("bad signature"): about one handshake in 250-600 fails.
-- Each handshake signs a different transcript, so curl runs against a
-- builtin server retry (docs/tls.md, "Backends").
_M.CURL_RETRY = tls.backend == "builtin" and "--retry 2 --retry-all-errors --retry-delay 0 " or ""

function _M.curl(mgr, args)
  return T.curl(mgr, _M.CURL_RETRY .. args, 15000, 10)
end

function _M.s_client(mgr, port, args)
  return T.run_client(mgr, "echo | timeout 10 openssl s_client -connect 127.0.0.1:" .. port .. " " .. args
                      .. " 2>&1", 15000)
end

_M.pki, _M.file = pki, file
_M.CA, _M.SRV_CERT, _M.SRV_KEY, _M.CLI_CERT, _M.CLI_KEY = CA, SRV_CERT, SRV_KEY, CLI_CERT, CLI_KEY
_M.SERVER_TLS = SERVER_TLS

return _M
