-- mongoose.http_client: HTTP/1.1 requests from the same manager as the
-- servers. One request per connection; the response arrives as an event.
local ffi = require("ffi")
local core = require("mongoose.core")
local http = require("mongoose.http")

local C = core.C
local EV = core.EV
local ffi_string = ffi.string
local type = type
local error = error
local setmetatable = setmetatable
local str_lower = string.lower
local concat = table.concat

local _M = {}

local Response = {}
Response.__index = Response
_M.Response = Response

--- Value of a response header (case-insensitive), or nil.
function Response:header(name)
  return self.headers[str_lower(name)]
end

local function copy_response(h)
  local headers = {}
  for i = 0, h.header_count - 1 do
    local hd = h.headers[i]
    local name = str_lower(ffi_string(hd.name.ptr, hd.name.len))
    local value = ffi_string(hd.value.ptr, hd.value.len)
    local old = headers[name]
    headers[name] = old and (old .. ", " .. value) or value
  end
  return setmetatable({
    status = h.status,
    reason = ffi_string(h.proto.ptr, h.proto.len),
    version = ffi_string(h.method.ptr, h.method.len),
    headers = headers,
    body = h.body.len > 0 and ffi_string(h.body.ptr, h.body.len) or "",
  }, Response)
end

-- Splits "http://host:port/path?q" into host-with-port and target.
local function parse_url(url)
  local scheme, authority, target = url:match("^(%a[%w+.-]*)://([^/?#]+)([^#]*)")
  if not scheme then
    return nil, "invalid URL: " .. url
  end
  scheme = str_lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL scheme: " .. scheme
  end
  if target == "" then
    target = "/"
  elseif target:sub(1, 1) == "?" then
    target = "/" .. target
  end
  return authority, target
end
_M.parse_url = parse_url

local Request = {}
Request.__index = Request

function Request:done(resp, err)
  if self.finished then
    return
  end
  self.finished = true
  if self.timer then
    self.timer:cancel()
  end
  self.mgr:disown(self.id)
  C.mgffi_close(self.mgr.cm, self.id, 1)
  self.mgr:protected_call("HTTP client callback", self.callback, resp, err)
end

function Request:on_event(ev)
  local t = ev.type
  if t == EV.HTTP_MSG then
    self:done(copy_response(ev.http), nil)
  elseif t == EV.ERROR then
    self.error = ffi_string(ev.data.ptr, ev.data.len)
  elseif t == EV.CLOSE then
    self:done(nil, self.error or "connection closed before a response arrived")
  end
end

--- Starts a request; callback(response, err) runs from a later poll.
-- opts: method ("GET"), headers (table), body (string), timeout (ms,
-- default 30000), tls (https: ca, name, cert, key, insecure; see
-- mongoose.tls). Returns true, or nil and an error.
function _M.request(mgr, url, opts, callback, level)
  level = level or 3 -- the caller of Manager:http_request
  if type(url) ~= "string" then
    error("url must be a string", level)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("opts must be a table", level)
  end
  if type(callback) ~= "function" then
    error("callback must be a function", level)
  end
  opts = opts or {}
  local timeout = opts.timeout or 30000
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 then
    error("timeout must be a positive number of ms", level)
  end
  local host, target = parse_url(url)
  if not host then
    return nil, target
  end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not method:match("^[A-Z]+$") then
    error("method must be an upper-case token", level)
  end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then
    error("body must be a string", level)
  end
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    error("headers must be a table", level)
  end
  local headers = opts.headers or {}
  local defaults = { Host = host, Connection = "close" }
  if body ~= nil or method == "POST" or method == "PUT" then
    defaults["Content-Length"] = tostring(body and #body or 0)
  end
  local block = http.header_block(headers, defaults)
  local tls = require("mongoose.tls")
  tls.check(opts.tls, level)
  local id, err = mgr:open_connection("connect", url, core.PROTO.HTTP, opts.tls)
  if not id then
    return nil, err
  end
  local req = setmetatable({ mgr = mgr, id = id, callback = callback, finished = false }, Request)
  mgr:own(id, req)
  local head = concat({ method, " ", target, " HTTP/1.1\r\n", block, "\r\n" })
  if C.mgffi_send(mgr.cm, id, head, #head) ~= 0
      or (body and #body > 0 and C.mgffi_send(mgr.cm, id, body, #body) ~= 0) then
    err = mgr:last_error()
    mgr:disown(id)
    C.mgffi_close(mgr.cm, id, 1)
    return nil, "cannot send the request: " .. err
  end
  req.timer = mgr:set_timeout(timeout, function()
    req:done(nil, "timeout after " .. timeout .. " ms")
  end)
  return true
end

--- Performs a request and waits for it, polling mgr meanwhile (servers on
-- the same manager keep serving). Not callable from a handler.
-- Returns the response, or nil and an error.
function _M.fetch(mgr, url, opts, level)
  level = level or 3
  if mgr.dispatching then
    error("fetch cannot be called from inside a handler; use http_request()", level)
  end
  local result, failure
  local done = false
  local ok, err = _M.request(mgr, url, opts, function(resp, e)
    result, failure, done = resp, e, true
  end, level == 0 and 0 or level + 1)
  if not ok then
    return nil, err
  end
  while not done do
    mgr:poll(50)
  end
  return result, failure
end

return _M
