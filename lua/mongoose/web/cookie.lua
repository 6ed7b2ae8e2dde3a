-- mongoose.web.cookie: the Cookie header read into a table, Set-Cookie
-- written with every attribute of RFC 6265 (and SameSite, Partitioned),
-- and signed cookies: the value and an HMAC-SHA256 of name and value
-- (mongoose.web.crypto, from Mongoose), checked in constant time.
local crypto = require("mongoose.web.crypto")

local type, error, tostring, floor = type, error, tostring, math.floor
local os_date, str_find, str_sub, str_byte = os.date, string.find, string.sub, string.byte
local concat = table.concat

local _M = {}

--- The cookies of a Cookie header value: { name = value } (the first of
-- repeated names; surrounding double quotes removed).
function _M.parse(header)
  local t = {}
  if type(header) ~= "string" then
    return t
  end
  for pair in header:gmatch("[^;]+") do
    local name, value = pair:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if name and t[name] == nil then
      if #value >= 2 and str_byte(value, 1) == 34 and str_byte(value, -1) == 34 then
        value = str_sub(value, 2, -2)
      end
      t[name] = value
    end
  end
  return t
end

--- The cookies of req (parsed once, kept as req.cookies).
function _M.all(req)
  local t = req.cookies
  if not t then
    t = _M.parse(req:header("cookie"))
    req.cookies = t
  end
  return t
end

--- The value of cookie name of req, or nil.
function _M.get(req, name)
  return _M.all(req)[name]
end

local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
-- cookie-octet: no control characters, space, '"', ',', ';' or '\'.
local BAD_VALUE = "[%c \",;\\\127-\255]"

local SAME_SITE = { strict = "Strict", lax = "Lax", none = "None" }

--- The Set-Cookie value for name=value with attrs: max_age (seconds),
-- expires (a Unix time or an HTTP date string), domain, path, secure,
-- http_only, same_site ("Strict", "Lax", "None"), partitioned. Raises
-- (at level) on a name or value a cookie cannot carry.
function _M.serialize(name, value, attrs, level)
  level = (level or 1) + 1
  if type(name) ~= "string" or not name:match(TOKEN) then
    error("cookie name must be a token", level)
  end
  value = tostring(value)
  if str_find(value, BAD_VALUE) then
    error("cookie value must not contain controls, spaces, '\"', ',', ';' or '\\'", level)
  end
  local out = { name .. "=" .. value }
  if attrs then
    if attrs.max_age ~= nil then
      out[#out + 1] = "Max-Age=" .. floor(attrs.max_age)
    end
    local exp = attrs.expires
    if type(exp) == "number" then
      out[#out + 1] = "Expires=" .. os_date("!%a, %d %b %Y %H:%M:%S GMT", exp)
    elseif exp ~= nil then
      out[#out + 1] = "Expires=" .. tostring(exp)
    end
    for _, k in ipairs({ "domain", "path" }) do
      local v = attrs[k]
      if v ~= nil then
        if str_find(tostring(v), "[%c;]") then
          error(k .. " must not contain controls or ';'", level)
        end
        out[#out + 1] = (k == "domain" and "Domain=" or "Path=") .. tostring(v)
      end
    end
    if attrs.secure then
      out[#out + 1] = "Secure"
    end
    if attrs.http_only then
      out[#out + 1] = "HttpOnly"
    end
    if attrs.same_site ~= nil then
      local s = SAME_SITE[tostring(attrs.same_site):lower()]
      if not s then
        error("same_site must be \"Strict\", \"Lax\" or \"None\"", level)
      end
      out[#out + 1] = "SameSite=" .. s
    end
    if attrs.partitioned then
      out[#out + 1] = "Partitioned"
    end
  end
  return concat(out, "; ")
end

--- Adds a Set-Cookie header to res (kept with the others already set).
function _M.set(res, name, value, attrs)
  local line = _M.serialize(name, value, attrs, 2)
  local h = res.default_headers
  local list = h and h["Set-Cookie"]
  if type(list) == "table" then
    list[#list + 1] = line
  elseif list ~= nil then
    res:set_header("Set-Cookie", { list, line })
  else
    res:set_header("Set-Cookie", { line })
  end
end

--- Removes cookie name in the client (an empty value, expired); attrs:
-- the path and domain it was set with.
function _M.clear(res, name, attrs)
  local a = { max_age = 0, expires = 0 }
  if attrs then
    a.path, a.domain = attrs.path, attrs.domain
  end
  _M.set(res, name, "", a)
end

local function mac(secret, name, value)
  return crypto.base64_encode(crypto.hmac_sha256(secret, name .. "=" .. value), true)
end

local function check_secret(secret, level)
  if type(secret) ~= "string" or #secret < 16 then
    error("secret must be a string of at least 16 bytes", level + 1)
  end
end

--- value with its signature: "value.MAC" (MAC: base64url HMAC-SHA256 of
-- name=value under secret).
function _M.sign(name, value, secret)
  check_secret(secret, 2)
  value = tostring(value)
  return value .. "." .. mac(secret, name, value)
end

--- The value of a signed cookie value, or nil when its MAC is wrong.
function _M.unsign(name, signed, secret)
  check_secret(secret, 2)
  if type(signed) ~= "string" then
    return nil
  end
  local dot = signed:match("^.*()%.")
  if not dot then
    return nil
  end
  local value, given = str_sub(signed, 1, dot - 1), str_sub(signed, dot + 1)
  if crypto.equals(given, mac(secret, name, value)) then
    return value
  end
  return nil
end

--- Sets a signed cookie (see sign and set).
function _M.set_signed(res, name, value, secret, attrs)
  check_secret(secret, 2)
  _M.set(res, name, _M.sign(name, value, secret), attrs)
end

--- The value of signed cookie name of req, or nil (absent or forged).
function _M.get_signed(req, name, secret)
  local v = _M.get(req, name)
  if v == nil then
    return nil
  end
  return _M.unsign(name, v, secret)
end

return _M
