-- mongoose.http: HTTP servers. A listener turns HTTP_MSG events into calls
-- of a Lua handler with a request and a response object; the response
-- writes through the glue's reply functions.
local ffi = require("ffi")
local core = require("mongoose.core")

ffi.cdef [[
int mgffi_http_set_limits(mgffi_manager *m, uint64_t listener_id, uint64_t max_body, uint64_t stream_threshold);
int mgffi_http_reply(mgffi_manager *m, uint64_t id, int status, const char *headers, size_t headers_len, const char *body, size_t body_len);
int mgffi_http_begin_chunked(mgffi_manager *m, uint64_t id, int status, const char *headers, size_t headers_len);
int mgffi_http_write_chunk(mgffi_manager *m, uint64_t id, const char *buf, size_t len);
int mgffi_http_end_chunked(mgffi_manager *m, uint64_t id);
int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root_dir, const char *extra_headers, const char *mime_types);
int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path, const char *extra_headers, const char *mime_types);
int mgffi_url_decode(const char *src, size_t src_len, char *dst, size_t dst_len, int form);
int mgffi_ws_upgrade(mgffi_manager *m, uint64_t id, const char *extra_headers, size_t extra_len);
int mgffi_ws_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op);
int mgffi_ws_connect(mgffi_manager *m, const char *url, const char *extra_headers, size_t extra_len, uint64_t *id);
int mgffi_ws_set_max_message(mgffi_manager *m, uint64_t id, uint64_t max_message);
]]

local C = core.C
local EV = core.EV
local F = core.F
local ffi_string = ffi.string
local bit_band = require("bit").band
local type = type
local next = next
local error = error
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local str_lower = string.lower
local str_find = string.find
local concat = table.concat
local xpcall = xpcall
local traceback = debug.traceback

local C_http_reply = C.mgffi_http_reply
local C_begin_chunked = C.mgffi_http_begin_chunked
local C_write_chunk = C.mgffi_http_write_chunk
local C_end_chunked = C.mgffi_http_end_chunked

local EV_HTTP_MSG = EV.HTTP_MSG
local EV_HTTP_HDRS = EV.HTTP_HDRS
local EV_HTTP_BODY = EV.HTTP_BODY
local EV_HTTP_BODY_END = EV.HTTP_BODY_END
local EV_HTTP_REJECTED = EV.HTTP_REJECTED
local EV_CLOSE = EV.CLOSE
local EV_ERROR = EV.ERROR

local _M = {}

---------------------------------------------------------------------------
-- Header blocks
---------------------------------------------------------------------------

local header_parts = {}

-- Errors are raised at level, counted from the function that calls these
-- helpers (each passes level + 1 on).
-- Plain finds: LuaJIT compiles them; a pattern find is not compiled and
-- made building a reply's header block about six times slower.
local function check_header_text(s, what, level)
  if str_find(s, "\r", 1, true) or str_find(s, "\n", 1, true) or str_find(s, "\0", 1, true) then
    error(what .. " must not contain CR, LF or NUL: " .. s, level + 1)
  end
end

-- Appends one header at header_parts[n+1..]; returns the new count. Plain
-- functions, not closures: the JIT compiles them, and building the block
-- allocates only the resulting string.
local function add_one(n, name, value, level)
  local tv = type(value)
  if tv == "number" then
    value = tostring(value)
  elseif tv ~= "string" then
    error("header '" .. name .. "' has a " .. tv .. " value", level + 1)
  end
  check_header_text(name, "header name", level + 1)
  check_header_text(value, "header value", level + 1)
  header_parts[n + 1] = name
  header_parts[n + 2] = ": "
  header_parts[n + 3] = value
  header_parts[n + 4] = "\r\n"
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
local function check_framing_header(lname, name, value, level)
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

-- Appends the header unless headers (the caller's table) overrides it;
-- for a reply, framing headers are checked first.
local function add_entry(n, name, value, level, reply)
  if reply and type(name) == "string" then
    local lname = framing_name(name)
    if lname then
      check_framing_header(lname, name, value, level + 1)
    end
  end
  return add_header(n, name, value, level + 1)
end

-- Builds "Name: value\r\n..." from a table { Name = "value" | {values} }
-- merged over defaults; raises on values that would split the message
-- and, for a reply (reply == true), on framing headers the C layer owns.
-- level: where errors point, as seen from the caller (default 2: the
-- caller's caller).
local function build_block(headers, defaults, level, reply)
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
  return concat(header_parts, "", 1, n)
end

local function header_block(headers, defaults, level)
  return build_block(headers, defaults, (level or 2) + 1, false)
end
_M.header_block = header_block

---------------------------------------------------------------------------
-- Request
---------------------------------------------------------------------------

local Request = {}
Request.__index = Request
_M.Request = Request

local function new_request(mgr, id, ev)
  local h = ev.http
  local query = h.query.len > 0 and ffi_string(h.query.ptr, h.query.len) or ""
  return setmetatable({
    mgr = mgr,
    id = id,
    http = h,
    method = ffi_string(h.method.ptr, h.method.len),
    path = ffi_string(h.uri.ptr, h.uri.len),
    query = query,
    version = ffi_string(h.proto.ptr, h.proto.len),
    stale_after = nil,   -- poll_seq after which the C views are gone
    streaming = bit_band(ev.flags, F.STREAMING) ~= 0,
  }, Request)
end

-- Raises unless the request's bytes are still held by the glue.
function Request:check_views()
  local last = self.stale_after
  if last ~= nil and self.mgr.poll_seq > last then
    error("request data is no longer available: the request was answered or its "
          .. "connection closed in an earlier poll; read it before replying", 3)
  end
end

function Request:mark_done()
  if self.stale_after == nil then
    self.stale_after = self.mgr.poll_seq
  end
end

--- Table of all headers, names lower-cased; repeated headers joined by ", ".
function Request:headers()
  local t = self.header_table
  if t then
    return t
  end
  self:check_views()
  t = {}
  local h = self.http
  for i = 0, h.header_count - 1 do
    local hd = h.headers[i]
    local name = str_lower(ffi_string(hd.name.ptr, hd.name.len))
    local value = ffi_string(hd.value.ptr, hd.value.len)
    local old = t[name]
    t[name] = old and (old .. ", " .. value) or value
  end
  self.header_table = t
  return t
end

--- Value of header name (case-insensitive), or nil.
function Request:header(name)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  return self:headers()[str_lower(name)]
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

--- Content-Length of the request (for streamed bodies: the announced size).
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

-- Parses "a=1&b=2" into { a = "1", b = "2" } (the first of repeated keys).
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

local info_buf = ffi.new("mgffi_conn_info")

-- The peer's address, looked up when first asked (most handlers never do).
local function load_remote(req)
  if req.remote_string == nil then
    if C.mgffi_get_conn_info(req.mgr.cm, req.id, info_buf) ~= 0 then
      return false
    end
    local r = info_buf.remote
    req.remote_string = core.format_addr(r, true)
    req.remote_ip_string = core.format_addr(r, false)
    req.remote_port_number = r.port
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
-- Response
---------------------------------------------------------------------------

local Response = {}
Response.__index = Response
_M.Response = Response

local function new_response(req)
  return setmetatable({ req = req, mgr = req.mgr, id = req.id, sent = false,
                        chunked = false, default_headers = nil, closed = false }, Response)
end

local function check_status(status)
  if type(status) ~= "number" or status < 100 or status > 999 or status % 1 ~= 0 then
    error("status must be an integer from 100 to 999", 3)
  end
end

-- Turns a failed C call into nil, err (and notes a gone connection).
local function failed(self, rc)
  if rc == core.ERR_NO_CONN then
    self.closed = true
    return nil, "connection closed"
  end
  return nil, self.mgr:last_error()
end

--- Sets a header sent with the response (send, begin or serve_*).
function Response:set_header(name, value)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  local h = self.default_headers
  if not h then
    h = {}
    self.default_headers = h
  end
  h[name] = value
  return self
end

function Response:check_unsent(level)
  if self.sent or self.chunked then
    error("response already sent", level + 1)
  end
end

local function finish(self)
  self.sent = true
  local req = self.req
  req:mark_done()
  local l = self.listener
  if l then
    l.pending[self.id] = nil
  end
end

--- Sends the whole response: status (number), body (string, may be nil),
-- headers (table, optional). Returns true, or nil and an error message.
function Response:send(status, body, headers)
  self:check_unsent(2)
  check_status(status)
  if body == nil then
    body = ""
  elseif type(body) ~= "string" then
    error("body must be a string", 2)
  end
  local block = build_block(headers, self.default_headers, 2, true)
  local rc = C_http_reply(self.mgr.cm, self.id, status, block, #block, body, #body)
  if rc ~= 0 then
    finish(self)
    return failed(self, rc)
  end
  finish(self)
  return true
end

--- Starts a chunked response; continue with write(), end with finish().
function Response:begin(status, headers)
  self:check_unsent(2)
  check_status(status)
  local block = build_block(headers, self.default_headers, 2, true)
  local rc = C_begin_chunked(self.mgr.cm, self.id, status, block, #block)
  if rc ~= 0 then
    finish(self)
    return failed(self, rc)
  end
  self.chunked = true
  return true
end

--- Sends one chunk of a response started with begin().
function Response:write(chunk)
  if not self.chunked or self.sent then
    error("write() needs a response started with begin()", 2)
  end
  if type(chunk) ~= "string" then
    error("chunk must be a string", 2)
  end
  local rc = C_write_chunk(self.mgr.cm, self.id, chunk, #chunk)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

--- Ends a chunked response, optionally writing a last chunk first.
function Response:finish(chunk)
  if not self.chunked or self.sent then
    error("finish() needs a response started with begin()", 2)
  end
  if chunk ~= nil then
    local ok, err = self:write(chunk)
    if not ok then
      finish(self)
      return nil, err
    end
  end
  local rc = C_end_chunked(self.mgr.cm, self.id)
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

local function serve_opts(self, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("opts must be a table", 3)
  end
  opts = opts or {}
  local block = build_block(opts.headers, self.default_headers, 3, true)
  local mime = opts.mime_types
  if mime ~= nil and type(mime) ~= "string" then
    error("mime_types must be a string like \"ext=type,ext2=type2\"", 3)
  end
  return block ~= "" and block or nil, mime
end

--- Serves the request from directory root (MIME types, Range, ETag,
-- index.html). opts.headers: extra headers; opts.mime_types:
-- "ext=type,...".
function Response:serve_dir(root, opts)
  self:check_unsent(2)
  if type(root) ~= "string" then
    error("root must be a string", 2)
  end
  local headers, mime = serve_opts(self, opts)
  local rc = C.mgffi_http_serve_dir(self.mgr.cm, self.id, root, headers, mime)
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

--- Serves one file (Range and ETag supported), 404 if it does not exist.
function Response:serve_file(path, opts)
  self:check_unsent(2)
  if type(path) ~= "string" then
    error("path must be a string", 2)
  end
  local headers, mime = serve_opts(self, opts)
  local rc = C.mgffi_http_serve_file(self.mgr.cm, self.id, path, headers, mime)
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

--- Calls fn(res) if the connection closes before the response is sent
-- (the client went away while a deferred reply was being prepared).
function Response:on_close(fn)
  if type(fn) ~= "function" then
    error("on_close expects a function", 2)
  end
  self.on_close_fn = fn
end

--- Closes the connection (after flushing what was queued).
function Response:close()
  if self.closed then
    return true
  end
  self.closed = true
  finish(self)
  C.mgffi_close(self.mgr.cm, self.id, 0)
  return true
end

--- Bytes queued for sending on this connection (0 once closed).
function Response:send_queued()
  if C.mgffi_get_conn_info(self.mgr.cm, self.id, info_buf) ~= 0 then
    return 0
  end
  return tonumber(info_buf.send_queued)
end

---------------------------------------------------------------------------
-- Listener
---------------------------------------------------------------------------

local Listener = {}
Listener.__index = Listener
_M.Listener = Listener


local TEXT_PLAIN = { ["Content-Type"] = "text/plain" }
local TEXT_PLAIN_CLOSE = { ["Content-Type"] = "text/plain", Connection = "close" }

-- Answers 500 in place of the reply res was meant for: headers set with
-- set_header are dropped (they may be what made the reply fail).
local function send_500(res, headers)
  res.default_headers = nil
  return res:send(500, "Internal Server Error\n", headers)
end

-- Handles the request: calls the handler and sends what it returned if it
-- returned a status. The handler is called directly, not under its own
-- xpcall, so that the JIT can compile the whole request path; an error it
-- raises is caught by the manager's dispatch loop, which calls
-- on_event_error below (answer 500) and goes on with the next event.
function Listener:handle(req)
  local res = new_response(req)
  res.listener = self
  self.pending[req.id] = res
  self.current = res
  local status, body, headers = self.handler(req, res)
  if res.sent or res.chunked or res.closed then
    self.current = nil
    return
  end
  if type(status) == "number" then
    self.sending_returned = true
    res:send(status, body, headers) -- raises on an invalid response: 500
    self.sending_returned = false
  elseif status ~= nil then
    self.current = nil
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " returned " .. type(status) .. " instead of a status number")
    send_500(res, TEXT_PLAIN)
  end
  -- Returned nothing and did not reply: the reply comes later (deferred).
  self.current = nil
end

local error_text = core.error_text

-- A body callback (what: "on_chunk" or "on_end") of req failed: no more
-- callbacks; the client gets 500 and the connection closes (once the rest
-- of the body has been read) unless a reply was made already.
local function body_failed(self, req, id, what, err)
  req.body_chunk_fn = nil
  req.body_end_fn = nil
  local res = self.pending[id]
  if res and res.req == req then
    if res.chunked then
      res:close()
    elseif not res.sent and not res.closed then
      send_500(res, TEXT_PLAIN_CLOSE)
    end
  end
  self.mgr:log("error", "HTTP body callback " .. what .. " for " .. req.method .. " " .. req.path
               .. " failed: " .. error_text(err))
end

-- Calls a body callback of req (on_chunk with chunk, or on_end).
local function call_body_fn(self, req, id, fn, what, chunk)
  self.body_req, self.body_what = req, what
  local ok, err
  if chunk then
    ok, err = xpcall(fn, traceback, chunk)
  else
    ok, err = xpcall(fn, traceback)
  end
  self.body_req = nil
  if not ok then
    body_failed(self, req, id, what, err)
  end
end

-- An error escaped while handling an event of this listener.
function Listener:on_event_error(err)
  local body_req = self.body_req
  if body_req then -- a body callback yielded (see Manager:guarded_call)
    self.body_req = nil
    return body_failed(self, body_req, body_req.id, self.body_what, err)
  end
  local res = self.current
  self.current = nil
  -- The client is answered first: logging may fail on odd error values.
  if res and res.chunked and not res.sent then
    res:close() -- the status line is gone: the client sees a cut response
  elseif res and not res.sent and not res.closed then
    send_500(res, TEXT_PLAIN)
  end
  if res then -- a streamed body is skipped from now on
    res.req.body_chunk_fn = nil
    res.req.body_end_fn = nil
  end
  err = error_text(err)
  if not res then
    self.mgr:log("error", "HTTP listener event failed: " .. err)
    return
  end
  local req = res.req
  if self.sending_returned then
    self.sending_returned = false
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " returned an invalid response: " .. err)
  else
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " failed: " .. err)
  end
end

function Listener:on_event(ev, id)
  local t = ev.type
  if t == EV_HTTP_MSG then
    self:handle(new_request(self.mgr, id, ev))
  elseif t == EV_CLOSE then
    self.streams[id] = nil
    local res = self.pending[id]
    if res then
      self.pending[id] = nil
      res.closed = true
      res.req:mark_done()
      local on_close = res.on_close_fn
      if on_close then
        self.mgr:protected_call("on_close", on_close, res)
      end
    end
  elseif t == EV_HTTP_HDRS then
    local req = new_request(self.mgr, id, ev)
    self.streams[id] = req
    self:handle(req)
  elseif t == EV_HTTP_BODY then
    local req = self.streams[id]
    local fn = req and req.body_chunk_fn
    if fn then
      call_body_fn(self, req, id, fn, "on_chunk", ffi_string(ev.data.ptr, ev.data.len))
    end
  elseif t == EV_HTTP_BODY_END then
    local req = self.streams[id]
    self.streams[id] = nil
    if req then
      local fn = req.body_end_fn
      if fn then
        call_body_fn(self, req, id, fn, "on_end")
      end
    end
  elseif t == EV_HTTP_REJECTED then
    self.mgr:log("info", "request rejected with " .. tonumber(ev.value) .. ": "
                 .. ffi_string(ev.data.ptr, ev.data.len))
  elseif t == EV_ERROR then
    local msg = ffi_string(ev.data.ptr, ev.data.len)
    local fn = self.on_connection_error
    if fn then
      self.mgr:protected_call("on_connection_error", fn, msg, core.format_addr(ev.remote, true))
    else
      self.mgr:log("debug", "connection " .. id .. ": " .. msg)
    end
  elseif self.extra_event then
    self.extra_event(self, ev, id)
  end
end

core.add_endpoint_methods(Listener) -- close, local_addr, port

--- Responses not yet sent, by connection id (deferred replies).
function Listener:pending_count()
  local n = 0
  for _ in pairs(self.pending) do
    n = n + 1
  end
  return n
end

-- Raises at level unless v is nil or an integer from 0 to 2^53 (sizes in
-- bytes passed to C as uint64_t: a wrong type, a fraction or a negative
-- number must not reach the FFI conversion, which raises late or wraps).
local MAX_SIZE = 2 ^ 53

local function check_size(v, name, zero, level)
  if v ~= nil and not core.is_integer_in(v, 0, MAX_SIZE) then
    error(name .. " must be an integer number of bytes from 0 (" .. zero .. ") to 2^53",
          level + 1)
  end
end

--- Opens an HTTP server on url with handler(req, res).
-- opts.max_body: largest request body accepted (413 beyond);
-- opts.stream_threshold: bodies above this size are streamed (req:on_body);
-- opts.max_connections, idle_timeout, request_timeout (ms), max_header_size,
-- max_headers: hardening limits (see docs/http.md); opts.tls: see
-- mongoose.tls; opts.on_connection_error(err, remote): a connection of
-- this listener failed (TLS handshake, socket error) before or between
-- requests.
function _M.listen(mgr, url, handler, opts)
  if type(url) ~= "string" then
    error("url must be a string", 3)
  end
  if type(handler) ~= "function" then
    error("handler must be a function", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("opts must be a table", 3)
  end
  opts = opts or {}
  if opts.on_connection_error ~= nil and type(opts.on_connection_error) ~= "function" then
    error("on_connection_error must be a function", 3)
  end
  local tls = require("mongoose.tls")
  tls.check(opts.tls, 3)
  core.check_limits(opts, 3)
  check_size(opts.max_body, "max_body", "the default", 3)
  check_size(opts.stream_threshold, "stream_threshold", "never stream", 3)
  local id, err = mgr:open_connection("listen", url, core.PROTO.HTTP, opts.tls)
  if not id then
    return nil, err
  end
  local ok
  ok, err = core.apply_limits(mgr.cm, id, opts, 3)
  if not ok then
    C.mgffi_close(mgr.cm, id, 1)
    return nil, err
  end
  if opts.max_body or opts.stream_threshold then
    local rc = C.mgffi_http_set_limits(mgr.cm, id, opts.max_body or 0, opts.stream_threshold or 0)
    if rc ~= 0 then
      local msg = mgr:last_error()
      C.mgffi_close(mgr.cm, id, 1)
      error(msg, 3)
    end
  end
  local self = setmetatable({
    mgr = mgr, id = id, url = url, handler = handler, pending = {}, streams = {},
    is_listener = true, closed = false, on_connection_error = opts.on_connection_error,
  }, Listener)
  mgr:own(id, self)
  mgr.listeners[id] = self
  return self
end

return _M
