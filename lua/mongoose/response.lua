-- mongoose.response: how an HTTP handler answers: a whole reply, a
-- chunked one, a file or directory, or an upgrade to a WebSocket (handed to
-- mongoose.websocket). Each writes through the C layer by connection id.
local ffi = require("ffi")
local core = require("mongoose.core")
local headers = require("mongoose.headers")

ffi.cdef [[
int mgffi_http_reply(mgffi_manager *m, uint64_t id, int status, const char *headers, size_t headers_len, const char *body, size_t body_len);
int mgffi_http_begin_chunked(mgffi_manager *m, uint64_t id, int status, const char *headers, size_t headers_len);
int mgffi_http_write_chunk(mgffi_manager *m, uint64_t id, const char *buf, size_t len);
int mgffi_http_end_chunked(mgffi_manager *m, uint64_t id);
int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root, size_t root_len, const char *extra_headers, size_t extra_len, const char *mime_types, size_t mime_len);
int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path, size_t path_len, const char *extra_headers, size_t extra_len, const char *mime_types, size_t mime_len);
]]

local C = core.C
local ERR = core.ERR
local type = type
local error = error
local setmetatable = setmetatable
local build = headers.build

local C_http_reply = C.mgffi_http_reply
local C_begin_chunked = C.mgffi_http_begin_chunked
local C_write_chunk = C.mgffi_http_write_chunk
local C_end_chunked = C.mgffi_http_end_chunked

local _M = {}

local Response = core.class("mongoose.Response")
_M.Response = Response

--- The response to req (a mongoose.request object).
function _M.new(req)
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
  if rc == ERR.NO_CONN then
    self.closed = true
    return nil, "connection closed"
  elseif rc == ERR.FULL then
    return nil, "send queue full"
  end
  return nil, self.mgr:last_error()
end
_M.failed = failed

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

-- The reply is done (or can no longer be made): the request's bytes go,
-- and the listener forgets the pending response. The first time, the
-- listener's on_response hook (http_listen's opts.on_response) sees it,
-- with res.status, res.bytes and res.duration (ms since the request).
local function finish(self)
  local first = not self.sent
  self.sent = true
  self.req:mark_done()
  local l = self.listener
  if l then
    l.pending[self.id] = nil
    local hook = l.on_response
    if hook and first then
      self.duration = core.millis() - (self.started or core.millis())
      l.mgr:protected_call("on_response", hook, self)
    end
  end
end
_M.finish = finish

--- Sends the whole response: status (number), body (string, may be nil),
-- headers (table, optional). Returns true, or nil and an error message.
function Response:send(status, body, hdrs)
  self:check_unsent(2)
  check_status(status)
  if body == nil then
    body = ""
  elseif type(body) ~= "string" then
    error("body must be a string", 2)
  end
  local block = build(hdrs, self.default_headers, 2, true)
  local rc = C_http_reply(self.mgr.cm, self.id, status, block, #block, body, #body)
  if rc == ERR.ARG then -- a 1xx status, a body on 204 or 304: nothing was sent
    error(self.mgr:last_error(), 2)
  end
  self.status, self.bytes = status, #body
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

--- Starts a chunked response; continue with write(), end with finish().
function Response:begin(status, hdrs)
  self:check_unsent(2)
  check_status(status)
  local block = build(hdrs, self.default_headers, 2, true)
  local rc = C_begin_chunked(self.mgr.cm, self.id, status, block, #block)
  if rc == ERR.ARG then -- a status without a body: nothing was sent
    error(self.mgr:last_error(), 2)
  end
  self.status, self.bytes = status, 0
  if rc ~= 0 then
    finish(self)
    return failed(self, rc)
  end
  self.chunked = true
  return true
end

--- Sends one chunk of a response started with begin(). nil, "send queue
-- full" while the connection's send queue is at max_send_queue.
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
  self.bytes = self.bytes + #chunk
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
  local block = build(opts.headers, self.default_headers, 3, true)
  local mime = opts.mime_types
  if mime ~= nil and type(mime) ~= "string" then
    error("mime_types must be a string like \"ext=type,ext2=type2\"", 3)
  end
  return block, mime or ""
end

local function serve(self, fn, target, opts)
  local hdrs, mime = serve_opts(self, opts)
  local rc = fn(self.mgr.cm, self.id, target, #target, hdrs, #hdrs, mime, #mime)
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

--- Serves the request from directory root (MIME types, Range, ETag,
-- index.html). opts.headers: extra headers; opts.mime_types:
-- "ext=type,...".
function Response:serve_dir(root, opts)
  self:check_unsent(2)
  if type(root) ~= "string" then
    error("root must be a string", 2)
  end
  return serve(self, C.mgffi_http_serve_dir, root, opts)
end

--- Serves one file (Range and ETag supported), 404 if it does not exist.
function Response:serve_file(path, opts)
  self:check_unsent(2)
  if type(path) ~= "string" then
    error("path must be a string", 2)
  end
  return serve(self, C.mgffi_http_serve_file, path, opts)
end

--- Upgrades the request to a WebSocket: see mongoose.websocket.upgrade.
function Response:upgrade(opts)
  self:check_unsent(2)
  local a, b = require("mongoose.websocket_server").upgrade(self, opts, 3)
  return a, b
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
  return core.send_queued(self.mgr.cm, self.id)
end

return _M
