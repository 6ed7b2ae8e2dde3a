-- mongoose.request: the request an HTTP handler receives. Its bytes stay
-- in the C layer (a view) until the request is answered; method, path,
-- query and version are Lua strings, everything else is copied only when
-- asked for.
local ffi = require("ffi")
local core = require("mongoose.core")
local headers = require("mongoose.headers")
local coro = require("mongoose.coro")

ffi.cdef [[
int mgffi_url_decode(const char *src, size_t src_len, char *dst, size_t dst_len, int form);
]]

local C, F, ffi_string = core.C, core.F, ffi.string
local bit_band = require("bit").band
local type, error, tonumber, setmetatable = type, error, tonumber, setmetatable
local str_lower = string.lower

local _M = {}

local Request = core.class("mongoose.Request")
_M.Request = Request

--- A request for event ev (HTTP_MSG or HTTP_HDRS) of connection id.
function _M.new(mgr, id, ev)
  local h = ev.http
  local query = h.query.len > 0 and ffi_string(h.query.ptr, h.query.len) or ""
  local req = setmetatable({
    mgr = mgr,
    id = id,
    http = h,
    method = ffi_string(h.method.ptr, h.method.len),
    path = ffi_string(h.uri.ptr, h.uri.len),
    query = query,
    version = ffi_string(h.proto.ptr, h.proto.len),
    stale_after = nil,   -- poll_seq after which the C views are gone
  }, Request)
  -- Eight fields, one hash part of 8 slots (a ninth would double it): the
  -- class says streaming = false.
  if bit_band(ev.flags, F.STREAMING) ~= 0 then
    req.streaming = true
  end
  return req
end
Request.streaming = false

-- Raises unless the request's bytes are still held by the glue; the error
-- points at level (default 3: the caller of the method that calls this).
function Request:check_views(level)
  local last = self.stale_after
  if last ~= nil and self.mgr.poll_seq > last then
    error("request data is no longer available: the request was answered or its "
          .. "connection closed in an earlier poll; read it before replying", level or 3)
  end
end

-- self[field], made by decode(self.http) on first use (for the methods
-- below: errors point at their caller).
local function decoded(self, field, decode)
  local t = self[field]
  if not t then
    self:check_views(4)
    t = decode(self.http)
    self[field] = t
  end
  return t
end

--- Marks the request answered (or its connection gone): its bytes are
-- released after this poll, and a streamed body nobody reads any more is
-- dropped as it arrives.
function Request:mark_done()
  if self.stale_after == nil then
    self.stale_after = self.mgr.poll_seq
  end
  if self.body_paused then
    self.body_paused = false
    if self.mgr.cm ~= nil then
      C.mgffi_pause_reading(self.mgr.cm, self.id, 0)
    end
  end
end

--- Table of all headers, names lower-cased; repeated headers joined by ", ".
function Request:headers()
  local t = decoded(self, "header_table", headers.of_message)
  return t
end

--- Value of header name (case-insensitive), or nil.
function Request:header(name)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  local t = self.header_table
  if t then
    return t[str_lower(name)]
  end
  -- One field: looked up in the C view, no table of all of them.
  self:check_views(3)
  local h = self.http
  return headers.find(h.headers, h.header_count, str_lower(name))
end

--- Trailer fields of a chunked request (names lower-cased), once its body
-- has arrived: for a streamed body, from on_body's on_end on.
function Request:trailers()
  local t = decoded(self, "trailer_table", headers.trailers_of)
  return t
end

--- The whole body as a string ("" when empty; nil for a streamed body).
function Request:body()
  local b = self.body_string
  if b then
    return b
  end
  if self.streaming then
    return nil
  end
  self:check_views()
  local body = self.http.body
  b = body.len > 0 and ffi_string(body.ptr, body.len) or ""
  self.body_string = b
  return b
end

--- Content-Length of the request (for streamed bodies: the announced size;
-- 0 for a chunked body still arriving).
function Request:content_length()
  local n = self.content_length_number
  if n == nil then
    self:check_views()
    n = tonumber(self.http.content_length)
    self.content_length_number = n
  end
  return n
end

local decode_buf_size = 1024
local decode_buf = ffi.new("char[?]", decode_buf_size)

--- Decodes %XX escapes of s (form: also '+' as a space); s itself when it
-- cannot be decoded.
local function url_decode(s, form)
  local n = #s + 1
  if n > decode_buf_size then
    decode_buf_size = n
    decode_buf = ffi.new("char[?]", n)
  end
  local len = C.mgffi_url_decode(s, #s, decode_buf, n, form and 1 or 0)
  if len < 0 then
    return s
  end
  return ffi_string(decode_buf, len)
end
_M.url_decode = url_decode

--- Parses "a=1&b=2" into { a = "1", b = "2" } (the first of repeated keys).
local function parse_query(q)
  local t = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = url_decode(k, true)
    if t[k] == nil then
      t[k] = url_decode(v, true)
    end
  end
  return t
end
_M.parse_query = parse_query

--- Decoded query parameters as a table, or the one named name.
function Request:query_params(name)
  local t = self.query_table
  if not t then
    t = parse_query(self.query)
    self.query_table = t
  end
  if name ~= nil then
    return t[name]
  end
  return t
end

-- The peer's address, looked up when first asked (most handlers never do).
local function load_remote(req)
  if req.remote_string == nil then
    local info = req.mgr.cm ~= nil and core.conn_info(req.mgr.cm, req.id)
    if not info then
      return false
    end
    req.remote_string, req.remote_ip_string, req.remote_port_number =
      core.peer_strings(info.remote)
  end
  return true
end

--- The peer as "1.2.3.4:5678" / "[::1]:5678", its IP and its port (nil
-- once the connection has closed without having been asked before).
function Request:remote_addr()
  load_remote(self)
  return self.remote_string
end

function Request:remote_ip()
  load_remote(self)
  return self.remote_ip_string
end

function Request:remote_port()
  load_remote(self)
  return self.remote_port_number
end

--- Registers on_chunk(chunk) for the pieces of a streamed body and
-- on_end() for its end. Only for requests with req.streaming set.
function Request:on_body(on_chunk, on_end)
  if not self.streaming then
    error("on_body is only for streamed requests (see stream_threshold)", 2)
  end
  if type(on_chunk) ~= "function" or (on_end ~= nil and type(on_end) ~= "function") then
    error("on_body expects on_chunk and optional on_end functions", 2)
  end
  self.body_chunk_fn = on_chunk
  self.body_end_fn = on_end
end

---------------------------------------------------------------------------
-- req:read_body(): the pieces of a streamed body, waited for in a task
---------------------------------------------------------------------------

-- Bytes of a streamed body queued for read_body before the connection
-- stops being read (it is read again once the reader has taken half).
local BODY_QUEUE_MAX = 1048576
_M.BODY_QUEUE_MAX = BODY_QUEUE_MAX

-- A piece of the streamed body arrived (from the listener, when no
-- on_body callback is set): to the task waiting in read_body, or queued
-- until the request is answered.
function Request:push_body(chunk)
  local waiter = self.body_waiter
  if waiter then
    self.body_waiter = nil
    coro.wake(waiter, self, chunk)
    return
  end
  if self.stale_after ~= nil then
    return -- answered: nobody will read it
  end
  local q = self.body_queue
  if not q then
    q = {}
    self.body_queue, self.body_head, self.body_tail, self.body_bytes = q, 1, 0, 0
  end
  local tail = self.body_tail + 1
  q[tail] = chunk
  self.body_tail = tail
  local bytes = self.body_bytes + #chunk
  self.body_bytes = bytes
  if bytes > BODY_QUEUE_MAX and not self.body_paused and self.mgr.cm ~= nil then
    self.body_paused = true
    C.mgffi_pause_reading(self.mgr.cm, self.id, 1)
  end
end

--- The streamed body is complete (err nil) or cut (err "closed").
function Request:end_body(err)
  if self.body_done then
    return
  end
  self.body_done, self.body_error = true, err
  local waiter = self.body_waiter
  if waiter then
    self.body_waiter = nil
    coro.wake(waiter, self, nil, err)
  end
end

function Request:abort_wait(task, why)
  self.body_waiter = nil
  return nil, why
end

--- The next piece of the body: for a streamed request (req.streaming)
-- waits for it inside a task; for any other, the whole body once. Returns
-- the piece, nil at the end, or nil and "closed" when the client went away.
function Request:read_body()
  if not self.streaming then
    if self.body_read then
      return nil
    end
    self.body_read = true
    local b = self:body()
    if b == "" then
      return nil
    end
    return b
  end
  if self.body_chunk_fn then
    error("read_body cannot be used with on_body callbacks", 2)
  end
  local q = self.body_queue
  if q and self.body_head <= self.body_tail then
    local head = self.body_head
    local chunk = q[head]
    q[head] = nil
    self.body_head = head + 1
    local bytes = self.body_bytes - #chunk
    self.body_bytes = bytes
    if self.body_paused and bytes <= BODY_QUEUE_MAX / 2 then
      self.body_paused = false
      if self.mgr.cm ~= nil then
        C.mgffi_pause_reading(self.mgr.cm, self.id, 0)
      end
    end
    return chunk
  end
  if self.body_done then
    return nil, self.body_error
  end
  local task = coro.running()
  if task == nil then
    return coro.call_blocking(self.mgr, 2, Request.read_body, self)
  end
  if self.body_waiter then
    error("another task is already reading this body", 2)
  end
  self.body_waiter = task
  return coro.wait(task, self, nil)
end

--- True when the request asks for a WebSocket upgrade.
function Request:is_websocket()
  local upgrade = self:header("upgrade")
  local key = self:header("sec-websocket-key")
  return upgrade ~= nil and upgrade:lower() == "websocket" and key ~= nil and key ~= ""
end

--- The subprotocols the client offers (Sec-WebSocket-Protocol), in order.
function Request:websocket_protocols()
  local list = {}
  local offered = self:header("sec-websocket-protocol")
  if offered then
    for p in offered:gmatch("[^,%s]+") do
      list[#list + 1] = p
    end
  end
  return list
end

return _M
