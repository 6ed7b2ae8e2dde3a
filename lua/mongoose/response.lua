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
typedef struct mgffi_serve_opts {
  uint32_t flags;
  uint32_t reserved;
  mgffi_str headers;
  mgffi_str path;
  mgffi_str index;
  mgffi_str mime_types;
  mgffi_str cache_control;
  mgffi_str precompressed;
  mgffi_str spa_fallback;
} mgffi_serve_opts;
int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root, size_t root_len, const mgffi_serve_opts *opts, uint64_t *body_len);
int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path, size_t path_len, const mgffi_serve_opts *opts, uint64_t *body_len);
int mgffi_set_file_cache(mgffi_manager *m, uint32_t max_entries, uint32_t valid_ms, uint32_t inactive_ms);
]]

local C, ERR, type, error = core.C, core.ERR, type, error
local tonumber, setmetatable, build = tonumber, setmetatable, headers.build

local C_http_reply, C_begin_chunked = C.mgffi_http_reply, C.mgffi_http_begin_chunked
local C_write_chunk, C_end_chunked = C.mgffi_http_write_chunk, C.mgffi_http_end_chunked

local _M = {}

local Response = core.class("mongoose.Response")
_M.Response = Response

--- The response to req (a mongoose.request object) of listener.
-- Fields at their default live in the class: a response then holds eight
-- fields (req, mgr, id, listener, the task of a handler that waits, sent,
-- status, bytes), one hash part of 8 slots made at once (the nil fields
-- of the constructor reserve their slots: nothing is rehashed).
Response.sent = false
Response.chunked = false
Response.closed = false

function _M.new(req, listener)
  return setmetatable({ req = req, mgr = req.mgr, id = req.id, listener = listener, task = nil,
                        status = nil, bytes = nil }, Response)
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
  end
  return core.send_failure(self.mgr, rc, "connection closed")
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

-- finish(self) after the C call that returned rc: true, or nil and its error.
local function finished(self, rc)
  finish(self)
  if rc ~= 0 then
    return failed(self, rc)
  end
  return true
end

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
  return finished(self, rc)
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
local function check_chunked(self, what)
  if not self.chunked or self.sent then
    error(what .. "() needs a response started with begin()", 3)
  end
end

function Response:write(chunk)
  check_chunked(self, "write")
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
  check_chunked(self, "finish")
  if chunk ~= nil then
    local ok, err = self:write(chunk)
    if not ok then
      finish(self)
      return nil, err
    end
  end
  return finished(self, C_end_chunked(self.mgr.cm, self.id))
end

-- Static files: the options, compiled once (mongoose.serve_options), go to
-- the C layer in one mgffi_serve_opts.
local serve_options = require("mongoose.serve_options")
local compile = serve_options.compile
_M.SERVE_FLAGS = serve_options.FLAGS -- enum mgffi_serve_flags (test_layout compares them)

--- Checks and compiles the options of serve_dir / serve_file once: the
-- result can be passed instead of the table, skipping the checks. Errors
-- point at level (default 1: the caller of serve_options).
function _M.serve_options(opts, level)
  local compiled = compile(opts, (level or 1) + 1)
  return compiled
end

local DEFAULT_SERVE = compile(nil, 1)
local serve_buf = ffi.new("mgffi_serve_opts")
local body_len = ffi.new("uint64_t[1]")

local function set_str(field, s)
  field.ptr = s
  field.len = #s
end

local function serve(self, fn, target, opts, level, path)
  local o = opts == nil and DEFAULT_SERVE or compile(opts, level + 1)
  local block = build(o.headers, self.default_headers, level + 2, true)
  path = path or o.path or ""
  local b = serve_buf
  b.flags = o.flags
  set_str(b.headers, block)
  set_str(b.path, path)
  set_str(b.index, o.index)
  set_str(b.mime_types, o.mime_types)
  set_str(b.cache_control, o.cache_control)
  set_str(b.precompressed, o.precompressed)
  set_str(b.spa_fallback, o.spa_fallback)
  -- (Nothing allocates during the call: the strings cannot be collected.)
  local rc = fn(self.mgr.cm, self.id, target, #target, b, body_len)
  if rc == 0 then
    return false, "not found"
  end
  if rc > 0 then
    self.status, self.bytes = rc, tonumber(body_len[0])
  end
  finish(self)
  if rc < 0 then
    return failed(self, rc)
  end
  return true
end

-- serve_dir and serve_file: target is the root or the file.
local function serve_target(self, fn, what, target, opts)
  self:check_unsent(3)
  if type(target) ~= "string" or target == "" then
    error(what .. " must be a non-empty string", 3)
  end
  local ok, err = serve(self, fn, target, opts, 3)
  return ok, err -- not tail calls: error levels count these frames
end

--- Serves the request from directory root: see docs/http.md for the
-- options (index, listing, dotfiles, symlinks, cache_control,
-- precompressed, spa_fallback, mime_types, headers, path, fallthrough).
function Response:serve_dir(root, opts)
  local ok, err = serve_target(self, C.mgffi_http_serve_dir, "root", root, opts)
  return ok, err
end

--- Serves one file (conditional requests, ranges, variants), 404 if it
-- does not exist.
function Response:serve_file(path, opts)
  local ok, err = serve_target(self, C.mgffi_http_serve_file, "path", path, opts)
  return ok, err
end

--- serve_dir with the path to look up given apart (already URL-decoded),
-- for app:static: its compiled options are shared by every request.
function _M.serve_dir_at(res, root, opts, path)
  res:check_unsent(2)
  local ok, err = serve(res, C.mgffi_http_serve_dir, root, opts, 2, path)
  return ok, err
end

--- The manager's open-file cache (see mgr:set_file_cache).
function _M.set_file_cache(mgr, opts, level)
  level = (level or 1) + 1
  if type(opts) ~= "table" then
    error("opts must be a table", level)
  end
  local function num(name, default)
    local v = opts[name]
    if v == nil then
      return default
    end
    if type(v) ~= "number" or v < 0 or v % 1 ~= 0 or v > 4294967295 then
      error(name .. " must be a whole number from 0", level + 1)
    end
    return v
  end
  local rc = C.mgffi_set_file_cache(mgr.cm, num("max_entries", 256), num("valid_ms", 1000),
                                    num("inactive_ms", 10000))
  if rc ~= 0 then
    return nil, mgr:last_error()
  end
  return true
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
