-- mongoose.web.cors: Cross-Origin Resource Sharing (the Fetch standard's
-- CORS protocol) as middleware: answers preflight requests itself and adds
-- the Access-Control-* headers to the replies of allowed origins through
-- res:set_header, so that they are kept on error replies too.
local type, error, tostring, concat = type, error, tostring, table.concat

local _M = {}

local function list_value(v, default)
  if v == nil then
    return default
  elseif type(v) == "table" then
    return concat(v, ", ")
  end
  return tostring(v)
end

-- Adds token to the Vary header set on res (compression adds its own).
local function add_vary(res, token)
  local d = res.default_headers
  local old = d and d.Vary
  if old == nil then
    res:set_header("Vary", token)
  elseif not old:find(token, 1, true) then
    res:set_header("Vary", old .. ", " .. token)
  end
end

-- A function(origin) -> allowed, for opts.origins.
local function origin_check(origins, level)
  if origins == nil or origins == "*" then
    return function()
      return true
    end
  elseif type(origins) == "string" then
    return function(o)
      return o == origins
    end
  elseif type(origins) == "table" then
    local set = {}
    for _, o in ipairs(origins) do
      set[o] = true
    end
    return function(o)
      return set[o] == true
    end
  elseif type(origins) == "function" then
    return origins
  end
  error("origins must be \"*\", an origin, a list of origins or a function", level + 1)
end

--- Middleware. opts: origins ("*" (default), "https://a.example", a list,
-- or function(origin) -> bool), methods (preflight's allowed methods;
-- default "GET, HEAD, PUT, PATCH, POST, DELETE"), headers (allowed request
-- headers; default: those the preflight asks for), expose (response
-- headers scripts may read), credentials (true: cookies allowed; the
-- origin is then echoed, never "*"), max_age (seconds a preflight is
-- cached).
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("opts must be a table", 2)
  end
  local allowed = origin_check(opts.origins, 2)
  local any = opts.origins == nil or opts.origins == "*"
  local credentials = opts.credentials and true or false
  local methods = list_value(opts.methods, "GET, HEAD, PUT, PATCH, POST, DELETE")
  local fixed_headers = opts.headers and list_value(opts.headers)
  local expose = opts.expose and list_value(opts.expose)
  local max_age = opts.max_age and tostring(math.floor(opts.max_age))
  return function(req, res)
    local origin = req:header("origin")
    if origin == nil then
      return nil
    end
    local preflight = req.method == "OPTIONS" and req:header("access-control-request-method") ~= nil
    if not allowed(origin, req) then
      if preflight then
        return 403, "origin not allowed\n", { ["Content-Type"] = "text/plain", Vary = "Origin" }
      end
      return nil
    end
    if any and not credentials then
      res:set_header("Access-Control-Allow-Origin", "*")
    else
      res:set_header("Access-Control-Allow-Origin", origin)
      add_vary(res, "Origin")
    end
    if credentials then
      res:set_header("Access-Control-Allow-Credentials", "true")
    end
    if preflight then
      res:set_header("Access-Control-Allow-Methods", methods)
      local h = fixed_headers or req:header("access-control-request-headers")
      if h then
        res:set_header("Access-Control-Allow-Headers", h)
      end
      if max_age then
        res:set_header("Access-Control-Max-Age", max_age)
      end
      return 204, ""
    end
    if expose then
      res:set_header("Access-Control-Expose-Headers", expose)
    end
    return nil
  end
end

return _M
