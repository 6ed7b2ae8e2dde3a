-- mongoose.http_response: the HTTP/1.1 response reader of the HTTP client
-- (RFC 9112): the status line (interim 1xx responses skipped), the
-- header fields, and the body framed by Transfer-Encoding: chunked,
-- Content-Length or the end of the connection, read from a cosocket,
-- whole or piece by piece (opts.on_chunk).
local tonumber, setmetatable, str_lower = tonumber, setmetatable, string.lower
local str_find, str_match, str_sub, str_byte = string.find, string.match, string.sub, string.byte
local concat = table.concat
local new_tab = require("table.new")
local now_ms = require("mongoose.coro").now_ms
local receive_fn = require("mongoose.socket_read").receive_fn

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

-- s from first to last without the spaces and tabs around (plain byte
-- loops: the JIT compiles them, not patterns).
local function trimmed(s, first, last)
  local b = str_byte(s, first)
  while first <= last and (b == 32 or b == 9) do
    first = first + 1
    b = str_byte(s, first)
  end
  b = str_byte(s, last)
  while last >= first and (b == 32 or b == 9) do
    last = last - 1
    b = str_byte(s, last)
  end
  return str_sub(s, first, last)
end

-- Header lines up to the empty line: a table of lower-cased names
-- (repeated fields joined with ", "), or nil, err.
local function read_fields(sock, deadline)
  local t, count, bytes, prev = {}, 0, 0, nil
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
    local lead = str_byte(line)
    if (lead == 32 or lead == 9) and prev then -- obs-fold: it continues the field before
      t[prev] = t[prev] .. " " .. trimmed(line, 1, #line)
    else
      local colon = str_find(line, ":", 1, true)
      if not colon or colon == 1 or lead == 32 or lead == 9 or str_find(line, " ", 1, true) == colon - 1
         or str_find(line, "\t", 1, true) == colon - 1 then
        return nil, "invalid header line in response: " .. str_sub(line, 1, 80)
      end
      local name = str_lower(str_sub(line, 1, colon - 1))
      local value = trimmed(line, colon + 1, #line)
      local old = t[name]
      t[name] = old and (old .. ", " .. value) or value
      prev = name
    end
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

-- Where the head that starts at sock.pos ends: the index of the last
-- byte of its CR LF CR LF; 0 when it has bare LF line ends (it is read
-- line by line); -1 when it is over MAX_HEAD_BYTES; nil: not all there.
local function head_end(sock)
  local buf, pos = sock.buf, sock.pos
  local e = str_find(buf, "\r\n\r\n", pos, true)
  if e then
    return e + 3
  end
  if str_find(buf, "\n\n", pos, true) or str_find(buf, "\n\r\n", pos, true) then
    return 0
  end
  if #buf - pos >= MAX_HEAD_BYTES then
    return -1
  end
  return nil
end

-- Parses the head in sock's buffer from sock.pos to stop (head_end) in
-- place: version, status, reason and the fields (as read_fields), and
-- consumes it; or nil when it is anything but plain (a bare LF, an
-- invalid line, a limit passed), for the line reader to handle or reject.
local function parse_head(sock, stop)
  local buf, pos = sock.buf, sock.pos
  if stop - pos >= MAX_HEAD_BYTES then
    return nil -- the line reader says it is too large
  end
  local le = str_find(buf, "\n", pos, true)
  if str_find(buf, "HTTP/1.", pos, true) ~= pos or le < pos + 13 or str_byte(buf, le - 1) ~= 13 then
    return nil
  end
  local v, sp, d1, d2, d3, sp2 = str_byte(buf, pos + 7, pos + 12)
  if sp ~= 32 or d1 < 48 or d1 > 57 or d2 < 48 or d2 > 57 or d3 < 48 or d3 > 57
     or (sp2 ~= 32 and pos + 12 ~= le - 1) then
    return nil
  end
  local version = v == 49 and "HTTP/1.1" or v == 48 and "HTTP/1.0" or nil
  if version == nil then
    return nil
  end
  local status = (d1 - 48) * 100 + (d2 - 48) * 10 + d3 - 48
  local reason = sp2 == 32 and str_sub(buf, pos + 13, le - 2) or ""
  local t, count, last = new_tab(0, 4), 0, nil
  local i = le + 1
  while i < stop - 1 do
    le = str_find(buf, "\n", i, true)
    if str_byte(buf, le - 1) ~= 13 then
      return nil
    end
    count = count + 1
    if count > MAX_HEADERS then
      return nil
    end
    local b = str_byte(buf, i)
    local first, e, colon = i, le - 2, nil
    if b == 32 or b == 9 then -- obs-fold: the line continues the field before
      if last == nil then
        return nil
      end
    else
      colon = str_find(buf, ":", i, true)
      if not colon or colon > e or colon == i then
        return nil
      end
      b = str_byte(buf, colon - 1)
      if b == 32 or b == 9 then
        return nil
      end
      first = colon + 1
    end
    local value = trimmed(buf, first, e)
    if colon == nil then -- a continuation line
      t[last] = t[last] .. " " .. value
    else
      local name = str_lower(str_sub(buf, i, colon - 1))
      local old = t[name]
      t[name] = old and (old .. ", " .. value) or value
      last = name
    end
    i = le + 1
  end
  sock.pos = stop + 1
  return version, status, reason, t
end

-- The head, line by line (bare LF line ends, and what parse_head leaves
-- to it): version, status, reason, fields; or nil, err.
local function read_head_lines(sock, deadline)
  local line, err = read_line(sock, deadline)
  if not line then
    return nil, err
  end
  local version, status, reason = str_match(line, "^(HTTP/1%.%d) (%d%d%d) ?(.*)$")
  if not version then
    return nil, "invalid status line in response: " .. str_sub(line, 1, 80)
  end
  local fields
  fields, err = read_fields(sock, deadline)
  if not fields then
    return nil, err
  end
  return version, tonumber(status), reason, fields
end

-- The value of a string of decimal digits (at most 15), or nil.
local function digits(text)
  local len = #text
  if len == 0 or len > 15 then
    return nil
  end
  local n = 0
  for i = 1, len do
    local b = str_byte(text, i)
    if b < 48 or b > 57 then
      return nil
    end
    n = n * 10 + b - 48
  end
  return n
end

--- Reads the response to req (method, on_chunk, max_body) from sock by
-- deadline (ms). Returns the response and whether the connection may be
-- kept, or nil, an error ("closed before the status line" when the
-- connection closed before any of it arrived) and, when the connection
-- failed (a close or a reset, not a timeout) before any byte of the
-- response, true.
function _M.read(sock, req, deadline)
  local version, status, reason, fields
  local first = true
  while true do
    local stop, err, rest
    if left(sock, deadline) then
      stop, err, rest = receive_fn(sock, head_end)
    else
      err = "timeout"
    end
    if not stop then
      -- Not a byte of the response came: the request may go again.
      local nothing = first and err ~= "timeout" and (rest == nil or rest == "")
      if err == "closed" then
        err = nothing and "closed before the status line" or "connection closed in the response head"
      end
      return nil, err, nothing
    end
    first = false
    if stop == -1 then
      return nil, "response head too large"
    end
    if stop > 0 then
      version, status, reason, fields = parse_head(sock, stop)
    end
    if not version then
      version, status, reason, fields = read_head_lines(sock, deadline)
      if not version then
        return nil, status
      end
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
  local ok, err
  local te = fields["transfer-encoding"]
  local cl = fields["content-length"]
  if cl and not te then
    local n = digits(cl)
    if not n then
      return nil, "invalid Content-Length in response: " .. str_sub(cl, 1, 40)
    end
    if n == 0 then
      return resp, keep
    end
    if on_chunk == nil then -- the body in one piece: no parts
      if n > max then
        return nil, "response body too large (" .. n .. " bytes, over " .. max .. ")"
      end
      if not left(sock, deadline) then
        return nil, "timeout"
      end
      local data
      data, err = sock:receive(n)
      if not data then
        return nil, err
      end
      resp.body = data
      return resp, keep
    end
  end
  local parts = {}
  if te and str_find(str_lower(te), "chunked", 1, true) then
    ok, err = read_chunked(sock, deadline, parts, on_chunk, resp, max)
  elseif cl and not te then
    ok, err = read_n(sock, digits(cl), deadline, parts, on_chunk, resp)
  else -- no length, or a Transfer-Encoding without chunked: to the close
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
