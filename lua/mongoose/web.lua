-- mongoose.web: a web layer over mongoose.http. An app routes requests by
-- method and path (mongoose.web.router), runs middleware before and after
-- its handlers, maps errors to replies, mounts sub-apps and directories,
-- and builds URLs from route names. Handlers are the same as http_listen's
-- (req, res) -> status, body, headers, with req.params set; a table body is
-- sent as JSON. The helpers for bodies, cookies, sessions, authentication,
-- CORS, server-sent events, compression and WebSocket groups are modules
-- of their own (mongoose.web.*), also reachable from here.
local core = require("mongoose.core")
local router = require("mongoose.web.router")
local response = require("mongoose.response")

local type, error, xpcall, traceback = type, error, xpcall, debug.traceback
local setmetatable, str_find, str_byte = setmetatable, string.find, string.byte
local SLASH = str_byte("/")

local FOUND, MOUNT, METHOD = router.FOUND, router.MOUNT, router.METHOD

local _M = { _VERSION = "0.1.0" }

local App = core.class("mongoose.web.App")
_M.App = App

local TEXT = { ["Content-Type"] = "text/plain; charset=utf-8" }
local JSON = { ["Content-Type"] = "application/json" }

--- A new app. opts: strict_slash (default false: "/a/" matches "/a"),
-- not_found(req, res) (the reply for paths no route has; default 404).
function _M.new(opts)
  opts = core.opt_table(opts, 2)
  core.check_option(opts, "not_found", "function", 2)
  return setmetatable({
    router = router.new({ strict_slash = opts.strict_slash }),
    before = {}, after_fns = {}, response_hooks = {},
    error_fn = nil, not_found_fn = opts.not_found, parent = nil,
  }, App)
end

local function check_fn(fn, what, level)
  if type(fn) ~= "function" then
    error(what .. " must be a function", level + 1)
  end
end

--- Adds a route: method (a token, e.g. "GET", or a list of them),
-- pattern ("/users/:id", "/files/*path"), handler(req, res), name (for
-- url_for). Returns the app (calls chain).
function App:route(method, pattern, handler, name)
  check_fn(handler, "handler", 2)
  if type(method) == "table" then
    for i, m in ipairs(method) do
      self.router:add(m, pattern, handler, i == 1 and name or nil, 3)
    end
    return self
  end
  self.router:add(method, pattern, handler, name, 3)
  return self
end

for _, m in ipairs({ "get", "post", "put", "patch", "delete", "options" }) do
  local method = m:upper()
  App[m] = function(self, pattern, handler, name)
    check_fn(handler, "handler", 2)
    self.router:add(method, pattern, handler, name, 3)
    return self
  end
end

--- Runs fn(req, res) before the route of every request reaching this app
-- (a mounted app: requests under its prefix). fn returning a status
-- answers with status, body, headers and skips the rest; so does a reply
-- made through res.
function App:use(fn)
  check_fn(fn, "middleware", 2)
  self.before[#self.before + 1] = fn
  return self
end

--- Runs fn(req, res, status, body, headers) on what a handler returned;
-- its return values (status, body, headers) replace them.
function App:after(fn)
  check_fn(fn, "after function", 2)
  self.after_fns[#self.after_fns + 1] = fn
  return self
end

--- fn(err, req, res) answers for a handler or middleware of this app that
-- raised (returns status, body, headers, or replies through res).
-- Without one the listener answers 500 and logs the error.
function App:on_error(fn)
  check_fn(fn, "error handler", 2)
  self.error_fn = fn
  return self
end

--- fn(res) sees every reply of the listeners opened with app:listen (see
-- http_listen's on_response); web.access_log makes one.
function App:on_response(fn)
  check_fn(fn, "on_response", 2)
  self.response_hooks[#self.response_hooks + 1] = fn
  return self
end

--- Mounts sub (an app) under prefix: its routes and middleware see the
-- rest of the path as req.path_info; req.path stays whole.
function App:mount(prefix, sub)
  if getmetatable(sub) ~= App then
    error("mount expects an app (mongoose.web.new())", 2)
  end
  self.router:mount(prefix, sub, 3)
  sub.parent = self
  return self
end

--- Serves the files under dir at prefix (GET and HEAD) with
-- res:serve_dir: opts are serve_dir's (index, listing, dotfiles,
-- symlinks, cache_control, precompressed, spa_fallback, mime_types,
-- headers). A path with no file goes to the app's not_found handler.
function App:static(prefix, dir, opts)
  if type(dir) ~= "string" or dir == "" then
    error("dir must be a non-empty string", 2)
  end
  core.opt_table(opts, 2)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  if o.path ~= nil then
    error("opts.path is set by app:static", 2)
  end
  if o.fallthrough == nil then
    o.fallthrough = true
  end
  local compiled = response.serve_options(o, 2)
  local app = self
  local function serve(req, res)
    local rel = req.params.path or ""
    -- The router drops a trailing '/', which names a directory.
    if str_byte(req.path, -1) == SLASH and str_byte(rel, -1) ~= SLASH then
      rel = rel .. "/"
    end
    local ok, err = response.serve_dir_at(res, dir, compiled, "/" .. rel)
    if ok == false then
      return app:not_found(req, res)
    end
    return ok, err
  end
  local base = prefix == "/" and "" or prefix
  self.router:add("GET", base .. "/*path", serve, nil, 2)
  if base ~= "" then
    self.router:add("GET", base, serve, nil, 2)
  end
  return self
end

--- The path of the route named name (see router:url_for); a route of a
-- mounted app is found through its parents' prefixes only if named here.
function App:url_for(name, params, query)
  return self.router:url_for(name, params, query, 3)
end

--- The reply for a path no route has (opts.not_found, or 404).
function App:not_found(req, res)
  local fn = self.not_found_fn
  if fn then
    return fn(req, res)
  end
  if self.parent then
    return self.parent:not_found(req, res)
  end
  return 404, "not found\n", TEXT
end

local encode_json -- set when mongoose.web.body loads (lazily: cjson is optional)

-- What a handler returned, after the after functions; a table body is
-- encoded as JSON.
local function finish(self, req, res, status, body, hdrs)
  local after = self.after_fns
  for i = 1, #after do
    status, body, hdrs = after[i](req, res, status, body, hdrs)
  end
  if type(body) == "table" then
    if not encode_json then
      encode_json = require("mongoose.web.body").encode_json
    end
    body = encode_json(body)
    if hdrs == nil then
      hdrs = JSON
    elseif hdrs["Content-Type"] == nil and hdrs["content-type"] == nil then
      hdrs = core.copy_table(hdrs)
      hdrs["Content-Type"] = "application/json"
    end
  end
  return status, body, hdrs
end

local dispatch

-- Dispatches req for path within self (no error handler of its own).
local function dispatch_plain(self, req, res, path)
  local before = self.before
  for i = 1, #before do
    local status, body, hdrs = before[i](req, res)
    if status ~= nil then
      return finish(self, req, res, status, body, hdrs)
    end
    if res.sent or res.chunked or res.closed then
      return
    end
  end
  local kind, a, b = self.router:resolve(req.method, path)
  if kind == FOUND then
    req.params = b
    req.route = a
    local status, body, hdrs = a.handler(req, res)
    if status == nil then
      return
    end
    return finish(self, req, res, status, body, hdrs)
  elseif kind == MOUNT then
    req.path_info = b
    return dispatch(a, req, res, b)
  elseif kind == METHOD then
    if req.method == "OPTIONS" then
      return 204, "", { Allow = a }
    end
    return 405, "method not allowed\n", { Allow = a, ["Content-Type"] = TEXT["Content-Type"] }
  end
  return self:not_found(req, res)
end

local function handle_error(self, err, req, res)
  if res.sent or res.chunked or res.closed then
    error(err, 0) -- nothing left to answer: the listener logs it
  end
  local status, body, hdrs = self.error_fn(err, req, res)
  if status == nil then
    return
  end
  return finish(self, req, res, status, body, hdrs)
end

-- Dispatches req for path within self, under its error handler if any.
dispatch = function(self, req, res, path)
  if self.error_fn == nil then
    return dispatch_plain(self, req, res, path)
  end
  local ok, status, body, hdrs = xpcall(dispatch_plain, traceback, self, req, res, path)
  if ok then
    return status, body, hdrs
  end
  return handle_error(self, status, req, res)
end

--- The handler(req, res) to give http_listen (or ws_listen's opts.http).
function App:handler()
  local fn = self.handler_fn
  if not fn then
    local app = self
    fn = function(req, res)
      return dispatch(app, req, res, req.path)
    end
    self.handler_fn = fn
  end
  return fn
end

--- The one on_response function of this app's hooks (nil without any).
function App:response_hook()
  local hooks = self.response_hooks
  if #hooks == 0 then
    return nil
  elseif #hooks == 1 then
    return hooks[1]
  end
  return function(res)
    for i = 1, #hooks do
      hooks[i](res)
    end
  end
end

--- Opens an HTTP listener on url serving this app: mgr:http_listen with
-- opts (on_response: the app's hooks, then opts.on_response).
function App:listen(mgr, url, opts)
  core.opt_table(opts, 2)
  local o = core.copy_table(opts)
  local mine, theirs = self:response_hook(), o.on_response
  if mine and theirs then
    o.on_response = function(res)
      mine(res)
      theirs(res)
    end
  else
    o.on_response = mine or theirs
  end
  local a, b = require("mongoose.http").listen(mgr, url, self:handler(), o, 3)
  return a, b
end

--- A handler that runs the middleware functions (as app:use's, for one
-- route), then handler: web.chain(mw1, mw2, ..., handler).
function _M.chain(...)
  local n = select("#", ...)
  local fns = { ... }
  for i = 1, n do
    check_fn(fns[i], i == n and "handler" or "middleware", 2)
  end
  local handler = fns[n]
  fns[n] = nil
  local count = n - 1
  return function(req, res)
    for i = 1, count do
      local status, body, hdrs = fns[i](req, res)
      if status ~= nil then
        return status, body, hdrs
      end
      if res.sent or res.chunked or res.closed then
        return
      end
    end
    return handler(req, res)
  end
end

---------------------------------------------------------------------------
-- Replies
---------------------------------------------------------------------------

--- status, body, headers of a JSON reply (value encoded with lua-cjson).
function _M.json(status, value, hdrs)
  if not encode_json then
    encode_json = require("mongoose.web.body").encode_json
  end
  local h = JSON
  if hdrs ~= nil then
    h = core.copy_table(hdrs)
    h["Content-Type"] = h["Content-Type"] or "application/json"
  end
  return status, encode_json(value), h
end

--- status, body, headers of a redirect to location (status: 301, 302
-- (default), 303, 307 or 308).
function _M.redirect(location, status)
  if type(location) ~= "string" or str_find(location, "[\r\n%z]") then
    error("location must be a string without CR, LF or NUL", 2)
  end
  status = status or 302
  if status ~= 301 and status ~= 302 and status ~= 303 and status ~= 307 and status ~= 308 then
    error("redirect status must be 301, 302, 303, 307 or 308", 2)
  end
  return status, "", { Location = location }
end

--- status, body, headers of a plain-text reply.
function _M.text(status, s)
  return status, s, TEXT
end

-- The helper modules, loaded when first used.
local HELPERS = {
  body = "mongoose.web.body", multipart = "mongoose.web.multipart",
  cookie = "mongoose.web.cookie", session = "mongoose.web.session",
  auth = "mongoose.web.auth", cors = "mongoose.web.cors", sse = "mongoose.web.sse",
  compress = "mongoose.web.compress", groups = "mongoose.web.groups",
  log = "mongoose.web.log", crypto = "mongoose.web.crypto",
}
setmetatable(_M, { __index = function(t, k)
  local name = HELPERS[k]
  if name then
    local m = require(name)
    t[k] = m
    return m
  end
  return nil
end })

return _M
