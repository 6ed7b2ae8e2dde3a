-- mongoose.web.auth: HTTP Basic and Bearer authentication (RFC 7617,
-- RFC 6750). The Authorization header is read by Mongoose's mg_http_creds
-- (mongoose.web.crypto.http_creds); middleware answers 401 with
-- WWW-Authenticate, and puts who passed at req.user.
local crypto = require("mongoose.web.crypto")

local type, error, tostring = type, error, tostring

local _M = {}

--- user, password of req's Basic credentials, or nil.
function _M.basic(req)
  local kind, user, pass = crypto.http_creds(req:header("authorization"))
  if kind == "basic" then
    return user, pass
  end
  return nil
end

--- The Bearer token of req, or nil.
function _M.bearer(req)
  local kind, _, token = crypto.http_creds(req:header("authorization"))
  if kind == "bearer" and token ~= "" then
    return token
  end
  return nil
end

local function quoted(s)
  return '"' .. tostring(s):gsub('[\\"]', "\\%0") .. '"'
end

local function check_opts(opts, level)
  if type(opts) ~= "table" or type(opts.check) ~= "function" then
    error("opts.check must be a function", level + 1)
  end
end

--- Middleware for Basic authentication: opts.check(user, password, req)
-- returns a true value (kept at req.user; true keeps the user name) or
-- nothing; opts.realm (default "restricted"). Others get 401.
function _M.basic_auth(opts)
  check_opts(opts, 2)
  local challenge = "Basic realm=" .. quoted(opts.realm or "restricted") .. ', charset="UTF-8"'
  local hdrs = { ["WWW-Authenticate"] = challenge, ["Content-Type"] = "text/plain" }
  local check = opts.check
  return function(req)
    local user, pass = _M.basic(req)
    if user then
      local who = check(user, pass, req)
      if who then
        req.user = who == true and user or who
        return nil
      end
    end
    return 401, "authentication required\n", hdrs
  end
end

--- Middleware for Bearer tokens: opts.check(token, req) returns the user
-- (kept at req.user) or nothing; opts.realm. A missing token gets 401, a
-- wrong one 401 with error="invalid_token".
function _M.bearer_auth(opts)
  check_opts(opts, 2)
  local realm = "Bearer realm=" .. quoted(opts.realm or "api")
  local missing = { ["WWW-Authenticate"] = realm, ["Content-Type"] = "text/plain" }
  local invalid = { ["WWW-Authenticate"] = realm .. ', error="invalid_token"',
                    ["Content-Type"] = "text/plain" }
  local check = opts.check
  return function(req)
    local token = _M.bearer(req)
    if not token then
      return 401, "token required\n", missing
    end
    local who = check(token, req)
    if not who then
      return 401, "invalid token\n", invalid
    end
    req.user = who
    return nil
  end
end

return _M
