-- mongoose.web.body: request bodies in JSON (lua-cjson, an optional
-- dependency: Debian's lua-cjson) and application/x-www-form-urlencoded,
-- as functions and as middleware that answers 400, 413 and 415 itself.
local core = require("mongoose.core")
local request = require("mongoose.request")

local type, error, pcall, next = type, error, pcall, next
local setmetatable, getmetatable, str_find = setmetatable, getmetatable, string.find
local str_lower, url_decode, add_value = string.lower, request.url_decode, core.add_value

local _M = {}

local cjson_loaded, cjson = pcall(require, "cjson")
if cjson_loaded then
  cjson = cjson.new() -- settings of our own, not the program's
end

local MISSING = "JSON needs lua-cjson, which is not installed (Debian: apt-get install lua-cjson)"

--- The lua-cjson module this layer uses (raises when it is missing).
function _M.cjson(level)
  if not cjson_loaded then
    error(MISSING, (level or 1) + 1)
  end
  return cjson
end

--- True when lua-cjson is there.
function _M.have_json()
  return cjson_loaded
end

-- Tables to encode as [] when empty (lua-cjson writes {} for them).
local ARRAY = { __name = "mongoose.web.array" }
local arrays_made = false

--- Marks t (default: a new table) as a JSON array, so that it is encoded
-- as [] when empty. Returns t.
function _M.array(t)
  arrays_made = true
  return setmetatable(t or {}, ARRAY)
end

local EMPTY_ARRAY_MARK = "\0mongoose.web.empty_array\0"

-- A copy of v where every empty marked array is the placeholder string.
local function mark_empty(v, depth)
  if type(v) ~= "table" or depth > 100 then
    return v
  end
  if getmetatable(v) == ARRAY and next(v) == nil then
    return EMPTY_ARRAY_MARK
  end
  local copy = {}
  local k, x = next(v)
  while k ~= nil do
    copy[k] = mark_empty(x, depth + 1)
    k, x = next(v, k)
  end
  return copy
end

-- lua-cjson 2.1.0 writes "/" as "\/"; every "/" it writes is escaped
-- so, and "\\" is written for a backslash, so "\/" is always that escape.
local function unescape_slashes(s)
  if str_find(s, "\\/", 1, true) then
    return (s:gsub("\\/", "/"))
  end
  return s
end

--- value encoded as JSON (raises when it cannot be: a function, a cycle).
function _M.encode_json(value)
  local j = _M.cjson(2)
  if not arrays_made then
    return unescape_slashes(j.encode(value))
  end
  local s = unescape_slashes(j.encode(mark_empty(value, 0)))
  if str_find(s, "\\u0000mongoose.web.empty_array\\u0000", 1, true) then
    s = s:gsub('"\\u0000mongoose%.web%.empty_array\\u0000"', "[]")
  end
  return s
end

--- The value of JSON text s, or nil and an error.
function _M.decode_json(s)
  local j = _M.cjson(2)
  local ok, v = pcall(j.decode, s)
  if not ok then
    return nil, (tostring(v):gsub("^.-:%d+: ", ""))
  end
  return v
end

local function media_type(req)
  local ct = req:header("content-type")
  if not ct then
    return nil
  end
  return str_lower(ct:match("^%s*([^;%s]+)") or "")
end

local function is_json_type(mt)
  return mt == "application/json" or (mt ~= nil and mt:match("^application/[%w.%-]+%+json$") ~= nil)
end

local FORM_TYPE = "application/x-www-form-urlencoded"

local function is_form_type(mt)
  return mt == FORM_TYPE
end

-- The body of req when is_type(its media type), else nil, err, status
-- (415: not of the expected type; 413: a streamed body, too big here).
local function typed_body(req, is_type, expected)
  if not is_type(media_type(req)) then
    return nil, "Content-Type must be " .. expected, 415
  end
  local body = req:body()
  if body == nil then
    return nil, "body too large", 413
  end
  return body
end

--- The JSON body of req: value, or nil, err, status (415: not JSON,
-- 400: bad JSON, 413: a streamed body, too big for this helper).
function _M.json(req)
  _M.cjson(2)
  local body, err, status = typed_body(req, is_json_type, "application/json")
  if body == nil then
    return nil, err, status
  end
  local v
  v, err = _M.decode_json(body)
  if v == nil then
    return nil, "invalid JSON: " .. err, 400
  end
  return v
end

--- Parses "a=1&b=2&b=3" into { a = "1", b = { "2", "3" } }: values
-- decoded, repeated keys as lists.
function _M.parse_form(s)
  local t = {}
  for pair in s:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    add_value(t, url_decode(k, true), url_decode(v, true))
  end
  return t
end

--- The form body of req (application/x-www-form-urlencoded): table, or
-- nil, err, status (415, 413).
function _M.form(req)
  local body, err, status = typed_body(req, is_form_type, FORM_TYPE)
  if body == nil then
    return nil, err, status
  end
  return _M.parse_form(body)
end

local ERROR_HEADERS = { ["Content-Type"] = "application/json" }

-- The plain-text error reply of a body middleware.
local function fail_text(status, err)
  return status, err .. "\n", { ["Content-Type"] = "text/plain" }
end

-- The JSON error reply of a body middleware.
local function fail(status, err)
  local ok, body = pcall(_M.encode_json, { error = err })
  if not ok then
    return fail_text(status, err)
  end
  return status, body, ERROR_HEADERS
end

-- True when req may carry a body worth parsing.
local function has_body(req)
  if req.streaming then
    return true
  end
  local b = req:body()
  return b ~= nil and #b > 0
end

-- A body middleware: _M[kind](req) (json or form) goes to req[kind]; a
-- body of another type (415) passes unless required; other failures are
-- answered with reply(status, err).
local function body_middleware(kind, required, reply)
  return function(req)
    if not has_body(req) then
      return nil
    end
    local v, err, status = _M[kind](req)
    if v == nil then
      if status == 415 and not required then
        return nil
      end
      return reply(status, err)
    end
    req[kind] = v
    return nil
  end
end

--- Middleware: a JSON body (application/json, application/*+json) is
-- parsed into req.json, bad JSON answered with 400; a body of another type
-- gets 415 (opts.require, the default) or passes untouched (require =
-- false). Requests without a body pass. Raises here when lua-cjson is
-- missing.
function _M.json_body(opts)
  _M.cjson(2)
  return body_middleware("json", not (opts and opts.require == false), fail)
end

--- Middleware: a form body goes to req.form (see parse_form); a body of
-- another type passes untouched unless opts.require (then 415).
function _M.form_body(opts)
  return body_middleware("form", opts and opts.require, fail_text)
end

return _M
