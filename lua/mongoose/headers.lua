-- mongoose.headers: HTTP header blocks both ways. build() turns a Lua table
-- into the "Name: value\r\n" lines the C layer sends (refusing values that
-- would split the message, and for replies the framing headers the C layer
-- writes itself); decode() is the one reader of received headers, for
-- requests, responses, trailers and WebSocket handshakes alike.
local ffi = require("ffi")

local ffi_string, type, next, error = ffi.string, type, next, error
local ipairs, tostring, str_lower, str_find = ipairs, tostring, string.lower, string.find
local concat = table.concat

local _M = {}

local parts = {}

-- Errors are raised at level, counted from the function that calls these
-- helpers (each passes level + 1 on).
-- Plain finds: LuaJIT compiles them; a pattern find is not compiled and
-- made building a reply's header block about six times slower.
local function check_text(s, what, level)
  if str_find(s, "\r", 1, true) or str_find(s, "\n", 1, true) or str_find(s, "\0", 1, true) then
    error(what .. " must not contain CR, LF or NUL: " .. s, level + 1)
  end
end

-- Appends one header at parts[n+1..]; returns the new count. Plain
-- functions, not closures: the JIT compiles them, and building the block
-- allocates only the resulting string.
local function add_one(n, name, value, level)
  local tv = type(value)
  if tv == "number" then
    value = tostring(value)
  elseif tv ~= "string" then
    error("header '" .. name .. "' has a " .. tv .. " value", level + 1)
  end
  check_text(name, "header name", level + 1)
  check_text(value, "header value", level + 1)
  parts[n + 1] = name
  parts[n + 2] = ": "
  parts[n + 3] = value
  parts[n + 4] = "\r\n"
  return n + 4
end

-- One header, or one per value of a list.
local function add_header(n, name, value, level)
  if type(name) ~= "string" then
    error("header names must be strings", level + 1)
  end
  if type(value) == "table" then
    for _, v in ipairs(value) do
      n = add_one(n, name, v, level + 1)
    end
    return n
  end
  return add_one(n, name, value, level + 1)
end

-- The lower-cased name if it is one of the framing headers the C layer
-- writes in a reply (only names of their lengths are lower-cased).
local function framing_name(name)
  local len = #name
  if len == 10 or len == 14 or len == 17 then
    local l = str_lower(name)
    if l == "connection" or l == "content-length" or l == "transfer-encoding" then
      return l
    end
  end
  return nil
end

-- A framing header set for a reply: Content-Length and Transfer-Encoding
-- raise (the C layer writes them); Connection may only be "close", which
-- the C layer honours (it then closes after the reply and writes no
-- Connection header of its own).
local function check_framing(lname, name, value, level)
  if lname == "connection" then
    if type(value) == "string" and str_lower(value) == "close" then
      return
    end
    error("header '" .. name .. "' may only be \"close\" (the C layer writes keep-alive "
          .. "headers itself)", level + 1)
  end
  error("header '" .. name .. "' must not be set: the C layer writes Content-Length and "
        .. "Transfer-Encoding", level + 1)
end

local function add_entry(n, name, value, level, reply)
  if reply and type(name) == "string" then
    local lname = framing_name(name)
    if lname then
      check_framing(lname, name, value, level + 1)
    end
  end
  return add_header(n, name, value, level + 1)
end

--- Builds "Name: value\r\n..." from a table { Name = "value" | {values} }
-- merged over defaults (entries of headers win); raises on values that
-- would split the message and, for a reply (reply == true), on framing
-- headers the C layer owns. level: where errors point, counted like
-- error()'s (default 2: the caller of build).
function _M.build(headers, defaults, level, reply)
  if headers == nil and defaults == nil then
    return ""
  end
  level = (level or 2) + 1 -- as seen from here
  local n = 0
  -- next(), not pairs(), on this per-reply path: see core.copy_table (a
  -- LuaJIT bug once gave header "names" that were the builtin next and its
  -- table, about 3 replies in a million under load).
  if defaults then
    local name, value = next(defaults)
    while name ~= nil do
      if headers == nil or headers[name] == nil then
        n = add_entry(n, name, value, level, reply)
      end
      name, value = next(defaults, name)
    end
  end
  if headers then
    if type(headers) ~= "table" then
      error("headers must be a table", level)
    end
    local name, value = next(headers)
    while name ~= nil do
      n = add_entry(n, name, value, level, reply)
      name, value = next(headers, name)
    end
  end
  if n == 0 then
    return ""
  end
  -- Entries past n are left from longer blocks: concat reads only 1..n.
  return concat(parts, "", 1, n)
end

--- Decodes count mgffi_header entries at list into a table: names lower-
-- cased, repeated fields joined with ", " (RFC 9110 5.3), in order.
function _M.decode(list, count)
  local t = {}
  for i = 0, count - 1 do
    local h = list[i]
    local name = str_lower(ffi_string(h.name.ptr, h.name.len))
    local value = h.value.len > 0 and ffi_string(h.value.ptr, h.value.len) or ""
    local old = t[name]
    t[name] = old and (old .. ", " .. value) or value
  end
  return t
end

--- The value of one field of count mgffi_header entries at list, as
-- decode would give it (lname: the name lower-cased), without a table:
-- only names of that length are compared. nil when absent.
function _M.find(list, count, lname)
  local len, value = #lname, nil
  for i = 0, count - 1 do
    local h = list[i]
    if h.name.len == len and str_lower(ffi_string(h.name.ptr, len)) == lname then
      local v = h.value.len > 0 and ffi_string(h.value.ptr, h.value.len) or ""
      value = value and (value .. ", " .. v) or v
    end
  end
  return value
end

--- The headers of an mgffi_http_message, decoded.
function _M.of_message(h)
  return _M.decode(h.headers, h.header_count)
end

--- The trailer fields of an mgffi_http_message (chunked requests), decoded.
function _M.trailers_of(h)
  if h.trailer_count == 0 then
    return {}
  end
  return _M.decode(h.trailers, h.trailer_count)
end

return _M
