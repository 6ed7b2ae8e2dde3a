-- mongoose.http_client: HTTP/1.1 requests from the same manager as the
-- servers, written as sequential code on cosockets (mongoose.socket):
-- connections are kept alive in a pool per scheme, host and port; request
-- bodies may be streamed (a function giving the pieces, sent chunked);
-- responses may be streamed (opts.on_chunk); redirects are followed when
-- asked. Inside a task fetch() waits; in the main program it polls;
-- http_request() runs the request in a task of its own and calls back.
local core = require("mongoose.core")
local coro = require("mongoose.coro")
local headers = require("mongoose.headers")
local socket = require("mongoose.socket")
local read_response = require("mongoose.http_response").read

local type, error, tostring, tonumber = type, error, tostring, tonumber
local setmetatable, str_lower, str_format = setmetatable, string.lower, string.format
local str_find, str_sub, str_byte, concat = string.find, string.sub, string.byte, table.concat
local now_ms = coro.now_ms

local _M = {}

local DEFAULT_TIMEOUT = 30000
local DEFAULT_KEEPALIVE = 60000 -- ms an idle connection is kept
local DEFAULT_POOL = 32 -- idle connections per host
local DEFAULT_MAX_BODY = 16 * 1048576

local Response = require("mongoose.http_response").Response
_M.Response = Response

-- The parts of an origin ("http://host:port"): scheme, host (without
-- brackets), port and the Host header value; or nil, err.
local function parse_origin(url, scheme, authority)
  scheme = str_lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL scheme: " .. scheme
  end
  authority = authority:gsub("^.*@", "") -- user info is not sent
  local host, port = authority:match("^%[(.+)%]:?(.*)$")
  if not host then
    host, port = authority:match("^([^:]*):?(.*)$")
  end
  if host == "" then
    return nil, "invalid URL: " .. url
  end
  if port == "" then
    port = scheme == "https" and 443 or 80
  else
    local n = tonumber(port)
    if not port:match("^%d+$") or n > 65535 then
      return nil, "invalid port '" .. port .. "' in " .. url
    end
    port = n
  end
  return { scheme, host, port, authority }
end

-- Parsed origins by their text: a proxy sends every request to the same
-- few, and their parsing (patterns the JIT does not compile) is done once.
local origins, origin_count = {}, 0

-- Splits "http://host:port/path?q" into scheme, host (no brackets),
-- port, the Host header value and the request target; or nil, err.
local function parse_url(url)
  local sep = str_find(url, "://", 1, true)
  local stop = #url + 1
  if sep then -- the end of the authority: plain finds, which the JIT compiles
    local slash = str_find(url, "/", sep + 3, true)
    local query = str_find(url, "?", sep + 3, true)
    local frag = str_find(url, "#", sep + 3, true)
    stop = slash or stop
    if query and query < stop then stop = query end
    if frag and frag < stop then stop = frag end
  end
  local o = sep and origins[str_sub(url, 1, stop - 1)]
  if o == nil then
    local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]+)")
    if not scheme then
      return nil, "invalid URL: " .. url
    end
    local err
    o, err = parse_origin(url, scheme, authority)
    if not o then
      return nil, err
    end
    if origin_count >= 256 then
      origins, origin_count = {}, 0
    end
    origins[str_sub(url, 1, stop - 1)] = o
    origin_count = origin_count + 1
  end
  local target = str_sub(url, stop)
  local hash = str_find(target, "#", 1, true)
  if hash then
    target = str_sub(target, 1, hash - 1)
  end
  if target == "" then
    target = "/"
  elseif str_byte(target) == 63 then -- "?"
    target = "/" .. target
  end
  return o[1], o[2], o[3], o[4], target
end
_M.parse_url = parse_url

-- The absolute URL of a Location relative to base.
local function resolve_location(base, location)
  if location:match("^%a[%w+.-]*://") then
    return location
  end
  local origin = base:match("^(%a[%w+.-]*://[^/?#]+)")
  if location:sub(1, 2) == "//" then
    return base:match("^(%a[%w+.-]*:)") .. location
  elseif location:sub(1, 1) == "/" then
    return origin .. location
  end
  local dir = base:match("^(%a[%w+.-]*://[^?#]*/)") or (origin .. "/")
  return dir .. location
end

-- Raises (at level) unless opts are valid request options.
local function check_opts(opts, level)
  opts = core.opt_table(opts, level + 1)
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0) then
    error("timeout must be a positive number of ms", level + 1)
  end
  local method = opts.method
  if method ~= nil and (type(method) ~= "string" or not method:match("^[A-Z]+$")) then
    error("method must be an upper-case token", level + 1)
  end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    error("body must be a string or a function", level + 1)
  end
  core.check_option(opts, "headers", "table", level + 1)
  core.check_option(opts, "on_chunk", "function", level + 1)
  local r = opts.max_redirects
  if r ~= nil and not core.is_integer_in(r, 0, 100) then
    error("max_redirects must be an integer from 0 to 100", level + 1)
  end
  require("mongoose.tls").check(opts.tls, level + 1)
  -- The header values are checked now, not in the task.
  headers.build(opts.headers, nil, level + 1, false)
  return opts
end

-- The pool key of a connection for scheme://host:port with opts.tls.
local function pool_key(scheme, host, port, tls)
  local key = scheme .. "://" .. host .. ":" .. port
  if type(tls) == "table" then
    key = key .. "|" .. tostring(tls.ca) .. "|" .. tostring(tls.name) .. "|" .. tostring(tls.cert)
      .. "|" .. tostring(tls.insecure)
  end
  return key
end

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }

-- Sends a streamed body: the pieces body() gives until nil or "", chunked
-- unless the caller set a Content-Length.
local function send_stream(sock, body, chunked)
  while true do
    local piece, err = body()
    if piece == nil or piece == "" then
      if err then
        return nil, "request body: " .. tostring(err)
      end
      break
    end
    if type(piece) ~= "string" then
      return nil, "request body: the body function gave a " .. type(piece)
    end
    local ok
    if chunked then
      ok, err = sock:send({ str_format("%x\r\n", #piece), piece, "\r\n" })
    else
      ok, err = sock:send(piece)
    end
    if not ok then
      return nil, err
    end
  end
  if chunked then
    local ok, err = sock:send("0\r\n\r\n")
    if not ok then
      return nil, err
    end
  end
  return true
end

-- One exchange on a connection (pooled or new). Returns the response, or
-- nil, err and whether the request may be sent again on a new connection
-- (a pooled connection the server had closed).
local function exchange(mgr, req, deadline)
  local left = deadline - now_ms()
  if left <= 0 then
    return nil, "timeout"
  end
  local material = req.tls_material
  req.tls_material = nil -- read once: a later connection reads the files again
  local sock = socket.take_pooled(mgr, req.key)
  local reused = sock ~= nil
  if not reused then
    sock = socket.tcp_reusable(mgr)
  end
  sock:settimeout(left)
  local ok, err
  if not reused then
    if material == nil and req.tls_url then
      -- A new TLS connection: the certificates are read now (files).
      material, err = require("mongoose.tls").prepare(req.tls_url, req.tls_opts, true)
      if not material then
        return nil, err
      end
    end
    ok, err = sock:connect(req.host, req.port, { pool = req.key, tls_material = material })
    if not ok then
      return nil, err
    end
  end
  ok, err = sock:send(req.head)
  if ok then
    local body = req.body
    if type(body) == "string" then
      if #body > 0 then
        ok, err = sock:send(body)
      end
    elseif body then
      ok, err = send_stream(sock, body, req.chunked)
    end
  end
  if not ok then
    sock:close()
    return nil, err, reused and type(req.body) ~= "function"
  end
  local resp, keep, failed_early = read_response(sock, req, deadline) -- or nil, err, early
  if not resp then
    sock:close()
    -- A kept-alive connection the server closed (or reset, when the
    -- request reached it after its close) just as it was reused.
    return nil, keep, reused and failed_early and IDEMPOTENT[req.method]
  end
  if keep and req.keepalive then
    sock:setkeepalive(req.keepalive_timeout, req.pool_size)
  else
    sock:close()
  end
  return resp
end

-- Requests prepared for plain GETs by their URL (no headers, no body, no
-- TLS): a proxy sends the same few, and exchange only reads them. Each
-- holds the options it was made with; one made with others is made anew.
local simple, simple_count = {}, 0

local function same_options(req, opts)
  return req.keepalive == (opts.keepalive ~= false) and req.on_chunk == opts.on_chunk
    and req.keepalive_timeout == (opts.keepalive_timeout or DEFAULT_KEEPALIVE)
    and req.pool_size == (opts.keepalive_pool or DEFAULT_POOL)
    and req.max_body == (opts.max_body or DEFAULT_MAX_BODY)
end

-- The request of opts for url: what exchange needs, or nil, err. With
-- mgr, the TLS files of a new https connection are read now.
local function prepare(url, opts, mgr)
  local cacheable = opts.headers == nil and opts.body == nil
    and (opts.method == nil or opts.method == "GET")
  if cacheable then
    local req = simple[url]
    if req ~= nil and same_options(req, opts) then
      return req
    end
  end
  local scheme, host, port, authority, target = parse_url(url)
  if not scheme then
    return nil, host
  end
  local method = opts.method or "GET"
  local body = opts.body
  local defaults = { Host = authority }
  local keepalive = opts.keepalive ~= false
  if not keepalive then
    defaults.Connection = "close"
  end
  local chunked = false
  local user = opts.headers
  local has_length = false
  if user and type(body) == "function" then
    -- next(), not pairs(), on a request path: see core.copy_table.
    local name = next(user)
    while name ~= nil do
      local l = str_lower(name)
      has_length = has_length or l == "content-length" or l == "transfer-encoding"
      name = next(user, name)
    end
  end
  if type(body) == "string" or method == "POST" or method == "PUT" then
    if type(body) ~= "function" then
      defaults["Content-Length"] = tostring(body and #body or 0)
    end
  end
  if type(body) == "function" and not has_length then
    defaults["Transfer-Encoding"] = "chunked"
    chunked = true
  end
  local block = headers.build(user, defaults, 2, false)
  local tls_opts = opts.tls
  local req = {
    method = method, host = host, port = port, body = body, chunked = chunked,
    head = concat({ method, " ", target, " HTTP/1.1\r\n", block, "\r\n" }),
    key = pool_key(scheme, host, port, scheme == "https" and (tls_opts or true) or nil),
    keepalive = keepalive, keepalive_timeout = opts.keepalive_timeout or DEFAULT_KEEPALIVE,
    pool_size = opts.keepalive_pool or DEFAULT_POOL, on_chunk = opts.on_chunk,
    max_body = opts.max_body or DEFAULT_MAX_BODY, url = url,
  }
  if scheme == "https" then
    req.tls_url, req.tls_opts = url, tls_opts
    if mgr and socket.pool_count(mgr, req.key) == 0 then
      local material, err = require("mongoose.tls").prepare(url, tls_opts, true)
      if not material then
        return nil, err
      end
      req.tls_material = material
    end
  elseif cacheable then
    if simple_count >= 256 then
      simple, simple_count = {}, 0
    end
    if simple[url] == nil then
      simple_count = simple_count + 1
    end
    simple[url] = req
  end
  return req
end

--- Performs a request inside a task (the one running, which waits);
-- first: the request already prepared for url, if any. Returns the
-- response, or nil and an error.
function _M.request_in_task(mgr, url, opts, first)
  opts = opts or {}
  local timeout = opts.timeout or DEFAULT_TIMEOUT
  local deadline = now_ms() + timeout
  local redirects = opts.max_redirects or 0
  local history = 0
  while true do
    local req = first
    first = nil
    if not req then
      local perr
      req, perr = prepare(url, opts, mgr)
      if not req then
        return nil, perr
      end
    end
    local resp, err, retry = exchange(mgr, req, deadline)
    if not resp and retry then -- a kept-alive connection had gone stale
      resp, err = exchange(mgr, req, deadline)
    end
    if not resp then
      if err == "timeout" then
        return nil, "timeout after " .. timeout .. " ms"
      elseif err == "closed" or err == "closed before the status line" then
        return nil, "connection closed before a response arrived"
      end
      return nil, err
    end
    resp.url = url
    resp.redirects = history
    local status = resp.status
    local location = resp.headers.location
    if redirects <= 0 or not location or (status ~= 301 and status ~= 302 and status ~= 303
                                          and status ~= 307 and status ~= 308) then
      return resp
    end
    if type(opts.body) == "function" and status ~= 303 then
      return resp -- a streamed body cannot be sent again
    end
    redirects = redirects - 1
    history = history + 1
    local next_url = resolve_location(url, location)
    local o = core.copy_table(opts)
    if status == 303 or ((status == 301 or status == 302) and (opts.method or "GET") == "POST") then
      o.method = (opts.method == "HEAD") and "HEAD" or "GET"
      o.body = nil
    end
    local same = next_url:match("^%a[%w+.-]*://([^/?#]+)") == url:match("^%a[%w+.-]*://([^/?#]+)")
    if not same and o.headers then -- credentials stay with their host
      local h = {}
      for k, v in pairs(o.headers) do
        local l = str_lower(k)
        if l ~= "authorization" and l ~= "cookie" then
          h[k] = v
        end
      end
      o.headers = h
    end
    opts, url = o, next_url
  end
end

---------------------------------------------------------------------------
-- http_request: a handle with cancel()
---------------------------------------------------------------------------

local Handle = core.class("mongoose.http_client.Request")
_M.Handle = Handle

local function request_entry(handle, mgr, url, opts, req)
  local resp, err = _M.request_in_task(mgr, url, opts, req)
  handle.done = true
  handle.task = nil
  handle.callback(resp, err)
end

local function request_done(handle, task, ok, err)
  handle.done = true
  handle.task = nil
  if not ok then
    task.mgr:log_failure("HTTP client callback", err)
  end
end

--- Stops the request: its connection is closed and its callback is not
-- called. Returns true, or false when it had already ended.
function Handle:cancel()
  local task = self.task
  if self.done or task == nil then
    return false
  end
  self.done, self.task, self.cancelled = true, nil, true
  coro.kill(task)
  return true
end

--- Starts a request; callback(response, err) runs later, in a task.
-- Returns a handle (handle:cancel()), or nil and an error.
function _M.request(mgr, url, opts, callback, level)
  level = level or 3 -- the caller of Manager:http_request
  if type(url) ~= "string" then
    error("url must be a string", level)
  end
  opts = check_opts(opts, level)
  if type(callback) ~= "function" then
    error("callback must be a function", level)
  end
  local req, err = prepare(url, opts, mgr)
  if not req then
    return nil, err
  end
  local handle = setmetatable({ mgr = mgr, url = url, callback = callback, done = false, task = nil },
                              Handle)
  -- The callback never runs before http_request has returned.
  local task = coro.run(mgr, request_done, handle, function()
    coro.sleep(0)
    return request_entry(handle, mgr, url, opts, req)
  end)
  if not handle.done then
    handle.task = task
  end
  return handle
end

--- Performs a request and returns the response (or nil, err): inside a
-- task it waits, in the main program it polls mgr meanwhile.
function _M.fetch(mgr, url, opts, level)
  level = level or 3
  if type(url) ~= "string" then
    error("url must be a string", level)
  end
  opts = check_opts(opts, level)
  local req, err = prepare(url, opts, mgr)
  if not req then
    return nil, err
  end
  if coro.running() then
    return _M.request_in_task(mgr, url, opts, req)
  end
  return coro.call_blocking(mgr, level, _M.request_in_task, mgr, url, opts, req)
end

return _M
