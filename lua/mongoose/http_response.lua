-- mongoose.http_response: the HTTP/1.1 response reader of the HTTP client
-- (RFC 9112): the status line (interim 1xx responses skipped), the
-- header fields, and the body framed by Transfer-Encoding: chunked,
-- Content-Length or the end of the connection, read from a cosocket,
-- whole or piece by piece (opts.on_chunk).
local tonumber, setmetatable, str_lower = tonumber, setmetatable, string.lower
local str_find, str_match, str_sub, str_byte = string.find, string.match, string.sub, string.byte
local concat = table.concat
local now_ms = require("mongoose.coro").now_ms

local _M = {}

local MAX_HEADERS = 100
local MAX_HEAD_BYTES = 65536
local PIECE = 65536 -- the largest piece handed to on_chunk

local Response = {}
Response.__index = Response
Response.__name = "mongoose.http_client.Response"
_M.Response = Response

--- Value of a response header (case-insensitive), or nil.
function Response:header(name)
  return self.headers[str_lower(name)]
end

-- Sets the socket's read timeout to what is left before deadline; false
-- when nothing is.
local function left(sock, deadline)
  local ms = deadline - now_ms()
  if ms <= 0 then
    return false
  end
  sock.rtimeout = ms
  return true
end

-- The next line, or nil and "timeout" (deadline passed) or the socket's
-- error.
local function read_line(sock, deadline)
  if not left(sock, deadline) then
    return nil, "timeout"
  end
  return sock:receive("*l")
end

-- Header lines up to the empty line: a table of lower-cased names
-- (repeated fields joined with ", "), or nil, err.
local function read_fields(sock, deadline)
  local t, count, bytes = {}, 0, 0
  while true do
    local line, err = read_line(sock, deadline)
    if not line then
      return nil, err
    end
    if line == "" then
      return t
    end
    count, bytes = count + 1, bytes + #line
    if count > MAX_HEADERS or bytes > MAX_HEAD_BYTES then
      return nil, "response head too large"
    end
    -- Plain finds and byte loops (the JIT compiles them; patterns not).
    local colon = str_find(line, ":", 1, true)
    if not colon or colon == 1 or str_find(line, " ", 1, true) == colon - 1
       or str_find(line, "\t", 1, true) == colon - 1 then
      return nil, "invalid header line in response: " .. str_sub(line, 1, 80)
    end
    local name = str_lower(str_sub(line, 1, colon - 1))
    local first, last = colon + 1, #line
    local b = str_byte(line, first)
    while b == 32 or b == 9 do
      first = first + 1
      b = str_byte(line, first)
    end
    b = str_byte(line, last)
    while last >= first and (b == 32 or b == 9) do
      last = last - 1
      b = str_byte(line, last)
    end
    local value = str_sub(line, first, last)
    local old = t[name]
    t[name] = old and (old .. ", " .. value) or value
  end
end

-- Reads n bytes of body: appended to parts, or handed to on_chunk.
local function read_n(sock, n, deadline, parts, on_chunk, resp)
  if on_chunk == nil then
    if not left(sock, deadline) then
      return nil, "timeout"
    end
    local data, err = sock:receive(n)
    if not data then
      return nil, err
    end
    parts[#parts + 1] = data
    return true
  end
  while n > 0 do
    if not left(sock, deadline) then
      return nil, "timeout"
    end
    local data, err = sock:receiveany(n < PIECE and n or PIECE)
    if not data then
      return nil, err
    end
    n = n - #data
    on_chunk(data, resp)
  end
  return true
end

local function read_chunked(sock, deadline, parts, on_chunk, resp, max)
  local total = 0
  while true do
    local line, err = read_line(sock, deadline)
    if not line then
      return nil, err
    end
    local hex = str_match(line, "^(%x+)[ \t]*;?.*$")
    if not hex or #hex > 12 then
      return nil, "invalid chunk size line in response: " .. str_sub(line, 1, 40)
    end
    local size = tonumber(hex, 16)
    if size == 0 then
      local trailers
      trailers, err = read_fields(sock, deadline)
      if not trailers then
        return nil, err
      end
      resp.trailers = trailers
      return true
    end
    total = total + size
    if on_chunk == nil and total > max then
      return nil, "response body too large (over " .. max .. " bytes)"
    end
    local ok
    ok, err = read_n(sock, size, deadline, parts, on_chunk, resp)
    if not ok then
      return nil, err
    end
    if not left(sock, deadline) then
      return nil, "timeout"
    end
    local crlf
    crlf, err = sock:receive(2)
    if crlf ~= "\r\n" then
      return nil, crlf and "chunk not followed by CRLF" or err
    end
  end
end

local function read_to_close(sock, deadline, parts, on_chunk, resp, max)
  local total = 0
  while true do
    if not left(sock, deadline) then
      return nil, "timeout"
    end
    local data, err = sock:receiveany(PIECE)
    if not data then
      if err == "closed" then
        return true
      end
      return nil, err
    end
    total = total + #data
    if on_chunk then
      on_chunk(data, resp)
    elseif total > max then
      return nil, "response body too large (over " .. max .. " bytes)"
    else
      parts[#parts + 1] = data
    end
  end
end

--- Reads the response to req (method, on_chunk, max_body) from sock by
-- deadline (ms). Returns the response and whether the connection may be
-- kept, or nil, an error ("closed before the status line" when the
-- connection closed before any of it arrived) and, when the connection
-- failed (a close or a reset, not a timeout) before a status line, true.
function _M.read(sock, req, deadline)
  local version, status, reason, fields
  local first = true
  while true do
    local line, err = read_line(sock, deadline)
    if not line then
      local nothing = first and err ~= "timeout"
      if err == "closed" then
        return nil, "closed before the status line", nothing
      end
      return nil, err, nothing
    end
    first = false
    version, status, reason = str_match(line, "^(HTTP/1%.%d) (%d%d%d) ?(.*)$")
    if not version then
      return nil, "invalid status line in response: " .. str_sub(line, 1, 80)
    end
    status = tonumber(status)
    fields, err = read_fields(sock, deadline)
    if not fields then
      return nil, err
    end
    if status >= 200 or status == 101 then
      break
    end -- 100 Continue and other interim responses: the real one follows
  end
  local resp = setmetatable({ status = status, reason = reason, version = version, headers = fields,
                              body = "" }, Response)
  local conn = fields.connection
  conn = conn and str_lower(conn) or ""
  local keep
  if version == "HTTP/1.1" then
    keep = not str_find(conn, "close", 1, true)
  else
    keep = str_find(conn, "keep-alive", 1, true) ~= nil
  end
  if req.method == "HEAD" or status == 204 or status == 304 or status < 200 then
    return resp, keep and status ~= 101
  end
  local on_chunk, max = req.on_chunk, req.max_body
  local parts = {}
  local ok, err
  local te = fields["transfer-encoding"]
  local cl = fields["content-length"]
  if te and str_find(str_lower(te), "chunked", 1, true) then
    ok, err = read_chunked(sock, deadline, parts, on_chunk, resp, max)
  elseif cl then
    local n = str_match(cl, "^%d+$") and tonumber(cl)
    if not n then
      return nil, "invalid Content-Length in response: " .. str_sub(cl, 1, 40)
    end
    if on_chunk == nil and n > max then
      return nil, "response body too large (" .. n .. " bytes, over " .. max .. ")"
    end
    if n > 0 then
      ok, err = read_n(sock, n, deadline, parts, on_chunk, resp)
    else
      ok = true
    end
  else
    keep = false
    ok, err = read_to_close(sock, deadline, parts, on_chunk, resp, max)
  end
  if not ok then
    return nil, err
  end
  if #parts == 1 then
    resp.body = parts[1]
  elseif #parts > 1 then
    resp.body = concat(parts)
  end
  return resp, keep
end

return _M
