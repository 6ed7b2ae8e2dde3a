-- mongoose.web.session: server-side sessions kept in memory, named by a
-- random id in a signed, HttpOnly cookie. A middleware puts the session's
-- table at req.session (nil without one); start() makes one (after a
-- login), destroy() ends it (a logout).
local core = require("mongoose.core")
local cookie = require("mongoose.web.cookie")
local crypto = require("mongoose.web.crypto")

local type, error, next, os_time = type, error, next, os.time
local setmetatable = setmetatable

local _M = {}

local Sessions = core.class("mongoose.web.Sessions")
_M.Sessions = Sessions

--- A session store. opts: secret (at least 16 bytes; signs the cookie),
-- name (cookie name, default "sid"), max_age (seconds, default 86400;
-- idle sessions expire after it), cookie (attributes: path "/" and
-- http_only true and same_site "Lax" by default; secure, domain),
-- max_sessions (default 100000: the oldest are dropped past it).
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.secret) ~= "string" or #opts.secret < 16 then
    error("sessions need opts.secret, a string of at least 16 bytes", 2)
  end
  local attrs = core.copy_table(opts.cookie)
  attrs.path = attrs.path or "/"
  if attrs.http_only == nil then
    attrs.http_only = true
  end
  attrs.same_site = attrs.same_site or "Lax"
  local max_age = opts.max_age or 86400
  attrs.max_age = max_age
  return setmetatable({
    secret = opts.secret, name = opts.name or "sid", max_age = max_age, attrs = attrs,
    max_sessions = opts.max_sessions or 100000, store = {}, count = 0, sweep_at = os_time() + 60,
  }, Sessions)
end

-- Drops expired sessions (at most once a minute, or when full).
local function sweep(self, now, force)
  if not force and now < self.sweep_at then
    return
  end
  self.sweep_at = now + 60
  local store = self.store
  local id, s = next(store)
  while id ~= nil do
    local nid, ns = next(store, id)
    if s.expires <= now then
      store[id] = nil
      self.count = self.count - 1
    end
    id, s = nid, ns
  end
end

--- The session table of req's cookie, or nil (none, expired or forged).
function Sessions:load(req)
  local id = cookie.get_signed(req, self.name, self.secret)
  if id == nil then
    return nil
  end
  local s = self.store[id]
  local now = os_time()
  sweep(self, now)
  if s == nil or s.expires <= now then
    return nil
  end
  s.expires = now + self.max_age
  req.session_id = id
  return s.data
end

--- Middleware: req.session is the request's session table, or nil.
function Sessions:middleware()
  return function(req)
    req.session = self:load(req)
    return nil
  end
end

--- Starts a new session for req (ending the one it had): returns its
-- table, also at req.session; the cookie goes with res's reply.
function Sessions:start(req, res, data)
  self:destroy(req)
  local now = os_time()
  if self.count >= self.max_sessions then
    sweep(self, now, true)
    if self.count >= self.max_sessions then
      -- Still full: drop the session closest to expiring.
      local oldest, when
      for id, s in next, self.store do
        if when == nil or s.expires < when then
          oldest, when = id, s.expires
        end
      end
      self.store[oldest] = nil
      self.count = self.count - 1
    end
  end
  local id = crypto.token(24)
  data = data or {}
  self.store[id] = { data = data, expires = now + self.max_age }
  self.count = self.count + 1
  req.session, req.session_id = data, id
  cookie.set_signed(res, self.name, id, self.secret, self.attrs)
  return data
end

--- Ends req's session (if res is given, the client's cookie is cleared).
function Sessions:destroy(req, res)
  local id = req.session_id
  if id and self.store[id] then
    self.store[id] = nil
    self.count = self.count - 1
  end
  req.session, req.session_id = nil, nil
  if res then
    cookie.clear(res, self.name, self.attrs)
  end
end

return _M
