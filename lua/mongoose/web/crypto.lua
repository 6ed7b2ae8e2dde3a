-- mongoose.web.crypto: the few cryptographic helpers the web layer needs,
-- from Mongoose through the C layer (HMAC-SHA256, base64), plus random
-- bytes from the kernel and a comparison whose time does not depend on
-- where two strings differ.
local ffi = require("ffi")
local bit = require("bit")
local core = require("mongoose.core")

ffi.cdef [[
int mgffi_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len, uint8_t *out, size_t out_len);
int mgffi_base64_encode(const void *src, size_t src_len, int url, char *dst, size_t dst_len, size_t *out_len);
int mgffi_base64_decode(const char *src, size_t src_len, void *dst, size_t dst_len, size_t *out_len);
int mgffi_http_creds(const char *authorization, size_t auth_len, char *user, size_t user_len, char *pass, size_t pass_len);
]]

local C, ffi_string, ffi_new, type = core.C, ffi.string, ffi.new, type
local error, str_byte = error, string.byte
local bxor, bor = bit.bxor, bit.bor
local C_hmac, C_b64_encode = C.mgffi_hmac_sha256, C.mgffi_base64_encode
local C_b64_decode = C.mgffi_base64_decode

local _M = {}

local mac_buf = ffi_new("uint8_t[32]")
local len_out = ffi_new("size_t[1]")
local scratch_size = 256
local scratch = ffi_new("char[?]", scratch_size)

local function scratch_of(n)
  if n > scratch_size then
    scratch_size = n
    scratch = ffi_new("char[?]", n)
  end
  return scratch
end

--- HMAC-SHA256 of data under key: the 32 raw bytes.
function _M.hmac_sha256(key, data)
  if type(key) ~= "string" or type(data) ~= "string" then
    error("key and data must be strings", 2)
  end
  C_hmac(key, #key, data, #data, mac_buf, 32)
  return ffi_string(mac_buf, 32)
end

--- Base64 of s; url: the URL alphabet without padding.
function _M.base64_encode(s, url)
  if type(s) ~= "string" then
    error("s must be a string", 2)
  end
  local cap = math.floor((#s + 2) / 3) * 4 + 1
  local buf = scratch_of(cap)
  if C_b64_encode(s, #s, url and 1 or 0, buf, cap, len_out) ~= 0 then
    return nil, "cannot encode"
  end
  return ffi_string(buf, len_out[0])
end

--- Decodes base64 (either alphabet, padded or not); nil, err when s is not
-- base64.
function _M.base64_decode(s)
  if type(s) ~= "string" then
    error("s must be a string", 2)
  end
  local cap = math.floor((#s + 3) / 4) * 3 + 1
  local buf = scratch_of(cap)
  if C_b64_decode(s, #s, buf, cap, len_out) ~= 0 then
    return nil, "not base64"
  end
  return ffi_string(buf, len_out[0])
end

--- True when a and b are equal strings; the time taken depends on their
-- lengths only (for comparing MACs and tokens).
function _M.equals(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then
    return false
  end
  local diff = 0
  for i = 1, #a do
    diff = bor(diff, bxor(str_byte(a, i), str_byte(b, i)))
  end
  return diff == 0
end

local user_buf = ffi_new("char[256]")
local pass_buf = ffi_new("char[1024]")
local CRED_KINDS = { [1] = "basic", [2] = "bearer" }

--- The credentials of an Authorization header value, read by Mongoose's
-- mg_http_creds: "basic", user, password; "bearer", nil, token; or nil.
function _M.http_creds(value)
  if type(value) ~= "string" then
    return nil
  end
  local kind = CRED_KINDS[C.mgffi_http_creds(value, #value, user_buf, 256, pass_buf, 1024)]
  if kind == "basic" then
    if user_buf[0] == 0 and pass_buf[0] == 0 then
      return nil -- not base64, or no colon
    end
    return kind, ffi_string(user_buf), ffi_string(pass_buf)
  elseif kind == "bearer" then
    return kind, nil, ffi_string(pass_buf)
  end
  return nil
end

local urandom
--- n random bytes from the kernel (/dev/urandom).
function _M.random_bytes(n)
  if not urandom then
    urandom = assert(io.open("/dev/urandom", "rb"))
  end
  return urandom:read(n)
end

--- A random token of n bytes (default 18) in URL-safe base64.
function _M.token(n)
  return _M.base64_encode(_M.random_bytes(n or 18), true)
end

return _M
