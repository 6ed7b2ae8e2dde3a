-- mongoose.tls: TLS settings for listeners (https://, wss://, tls://) and
-- clients. Certificates and keys are PEM strings or file names; files are
-- read here so that a missing one fails listen()/connect with its name.
local ffi = require("ffi")
local core = require("mongoose.core")

ffi.cdef [[
int mgffi_tls_set(mgffi_manager *m, uint64_t id, const char *ca, size_t ca_len, const char *cert, size_t cert_len, const char *key, size_t key_len, const char *name, size_t name_len, int skip_verification);
const char *mgffi_tls_backend(void);
]]

local C = core.C
local type = type
local error = error

local _M = {}

--- The TLS backend compiled into the library: "openssl", "builtin" or "none".
_M.backend = ffi.string(C.mgffi_tls_backend())

-- Where Debian keeps the system's trusted CAs (package ca-certificates).
_M.system_ca_file = "/etc/ssl/certs/ca-certificates.crt"

local TLS_SCHEMES = { https = true, wss = true, tls = true, ssl = true, tcps = true, mqtts = true }

--- True when url's scheme asks for TLS.
function _M.is_tls_url(url)
  local scheme = url:match("^(%a[%w+.-]*)://")
  return scheme ~= nil and TLS_SCHEMES[scheme:lower()] == true
end

-- A PEM (or DER) value: the string itself when it holds PEM, else a file.
local function load(value, what)
  if value == nil then
    return ""
  end
  if type(value) ~= "string" then
    error("tls." .. what .. " must be a PEM string or a file name", 4)
  end
  if value:find("-----BEGIN", 1, true) then
    return value
  end
  local f, err = io.open(value, "rb")
  if not f then
    return nil, "cannot read TLS " .. what .. " file " .. value .. ": " .. tostring(err)
  end
  local data = f:read("*a")
  f:close()
  if not data or #data == 0 then
    return nil, "TLS " .. what .. " file " .. value .. " is empty"
  end
  return data
end

--- Applies opts to connection id. Server (is_client false): cert and key
-- required, ca optional (then clients must present a certificate signed by
-- it). Client: ca (default: the system CAs), name (default: host of url),
-- cert/key for a client certificate, insecure = true to skip verification.
-- Returns true, or nil and an error naming the file that failed.
function _M.apply(mgr, id, opts, is_client, url)
  if type(opts) ~= "table" then
    error("tls must be a table", 3)
  end
  if _M.backend == "none" then
    return nil, "this build of mongoose-ffi has no TLS (configure with -DMGFFI_TLS=openssl)"
  end
  local cert, key, ca, err
  cert, err = load(opts.cert, "cert")
  if not cert then return nil, err end
  key, err = load(opts.key, "key")
  if not key then return nil, err end
  local name = ""
  local insecure = opts.insecure == true
  if is_client then
    if opts.ca ~= nil then
      ca, err = load(opts.ca, "ca")
    elseif not insecure then
      ca, err = load(_M.system_ca_file, "ca")
    else
      ca = ""
    end
    if not ca then return nil, err end
    name = opts.name or (url and url:match("^%a[%w+.-]*://%[?([^%]/:]+)")) or ""
    if insecure then
      ca, name = "", ""
    end
  else
    if cert == "" or key == "" then
      return nil, "a TLS listener needs tls.cert and tls.key"
    end
    ca, err = load(opts.ca, "ca")
    if not ca then return nil, err end
  end
  local rc = C.mgffi_tls_set(mgr.cm, id, ca, #ca, cert, #cert, key, #key, name, #name, insecure and 1 or 0)
  if rc ~= 0 then
    return nil, mgr:last_error()
  end
  return true
end

--- For a connection just opened on url: applies opts_tls when the URL
-- asks for TLS (or opts_tls is given). On failure closes the connection and
-- returns nil, err.
local TLS_FIELDS = { cert = "string", key = "string", ca = "string", name = "string", insecure = "boolean" }

--- Raises (at level) unless opts_tls is nil or a table of known fields.
function _M.check(opts_tls, level)
  if opts_tls == nil then
    return
  end
  if type(opts_tls) ~= "table" then
    error("tls must be a table", level + 1)
  end
  for k, v in pairs(opts_tls) do
    local want = TLS_FIELDS[k]
    if want == nil then
      error("unknown tls option: " .. tostring(k), level + 1)
    elseif type(v) ~= want then
      error("tls." .. k .. " must be a " .. want, level + 1)
    end
  end
end

function _M.setup(mgr, id, url, opts_tls, is_client)
  local wants = _M.is_tls_url(url)
  if not wants then
    return true
  end
  local ok, err
  if opts_tls == nil then
    if is_client then
      opts_tls = {}
    else
      ok, err = nil, "a TLS URL (" .. url .. ") needs opts.tls with cert and key"
    end
  end
  if opts_tls ~= nil then
    ok, err = _M.apply(mgr, id, opts_tls, is_client, url)
  end
  if not ok then
    C.mgffi_close(mgr.cm, id, 1)
    mgr:disown(id)
    return nil, err
  end
  return true
end

return _M
