-- mongoose.tls: TLS settings for listeners (https://, wss://, tls://) and
-- clients. Certificates and keys are PEM strings or file names; files are
-- read here so that a missing one fails listen()/connect with its name.
local ffi = require("ffi")
local core = require("mongoose.core")

ffi.cdef [[
int mgffi_tls_set(mgffi_manager *m, uint64_t id, const char *ca, size_t ca_len, const char *cert, size_t cert_len, const char *key, size_t key_len, const char *name, size_t name_len, int skip_verification);
const char *mgffi_tls_backend(void);
]]

local C, type, error = core.C, type, error

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
  if value == "" then
    -- Most likely an unset environment variable: never read as "none",
    -- which for tls.ca would silently drop certificate checks.
    return nil, "tls." .. what .. " is empty (give PEM text or a file name)"
  end
  if value:find("-----BEGIN", 1, true) then
    return value
  end
  local f, err = io.open(value, "rb")
  if not f then
    -- io.open's message already starts with the file name.
    return nil, "cannot read TLS " .. what .. " file " .. tostring(err)
  end
  local data = f:read("*a")
  f:close()
  if not data or #data == 0 then
    return nil, "TLS " .. what .. " file " .. value .. " is empty"
  end
  return data
end

-- The TLS material of opts (read from files where they are names), for a
-- server (is_client false: cert and key required, ca optional, then
-- clients must present a certificate signed by it) or a client (ca
-- default: the system CAs; name default: host of url; cert/key for a client
-- certificate; insecure = true skips verification).
-- Returns the material, or nil and an error naming the file that failed.
local function read_material(opts, is_client, url)
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
  return { ca = ca, cert = cert, key = key, name = name, insecure = insecure }
end

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

--- For a connection about to be opened on url: false when the URL does
-- not ask for TLS, else the material of opts_tls (files read now). Called
-- before the socket exists, so that a missing file fails listen/connect
-- without binding a port or starting a connection. Returns the material
-- (or false), or nil and an error.
function _M.prepare(url, opts_tls, is_client)
  if not _M.is_tls_url(url) then
    return false
  end
  if opts_tls == nil then
    if not is_client then
      return nil, "a TLS URL (" .. url .. ") needs opts.tls with cert and key"
    end
    opts_tls = {}
  end
  return read_material(opts_tls, is_client, url)
end

--- Hands material from prepare() to the connection just opened as id. On
-- failure closes the connection and returns nil, err.
function _M.install(mgr, id, material)
  if not material then
    return true
  end
  local m = material
  local rc = C.mgffi_tls_set(mgr.cm, id, m.ca, #m.ca, m.cert, #m.cert, m.key, #m.key, m.name, #m.name,
    m.insecure and 1 or 0)
  if rc ~= 0 then
    local err = mgr:last_error()
    mgr:drop(id, true)
    return nil, err
  end
  return true
end

return _M
