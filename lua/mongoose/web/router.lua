-- mongoose.web.router: path matching for mongoose.web. Routes without
-- parameters are found with one table lookup of the whole path; the others
-- walk a trie of path segments (a static segment before a :param before a
-- *splat, with backtracking), so the cost of a match depends on the depth
-- of the path, not on the number of routes. A matched static route
-- allocates nothing; a parameterised one allocates its params table.
local core = require("mongoose.core")
local request = require("mongoose.request")

local type, error, ipairs, tostring = type, error, ipairs, tostring
local setmetatable, str_find, str_sub, str_byte = setmetatable, string.find, string.sub, string.byte
local str_gsub, str_format, concat, sort = string.gsub, string.format, table.concat, table.sort
local url_decode = request.url_decode

local _M = {
  -- What resolve() found.
  FOUND = 1,    -- entry, params
  MOUNT = 2,    -- the mounted thing, the rest of the path
  METHOD = 3,   -- the path exists, not for this method: the Allow value
  NONE = 4,
}
local FOUND, MOUNT, METHOD, NONE = 1, 2, 3, 4

local Router = core.class("mongoose.web.Router")
_M.Router = Router

local SLASH = 47 -- "/"

local function new_node()
  return { children = {}, param = nil, splat = nil, routes = nil, mount = nil, allow = nil }
end

--- A router. opts.strict_slash: "/a/" and "/a" are different paths
-- (default false: a trailing slash is optional).
function _M.new(opts)
  core.opt_table(opts, 2)
  return setmetatable({
    static = {},          -- whole path -> node (routes without parameters)
    root = new_node(),    -- the segment trie
    names = {},           -- route name -> { segments } for url_for
    strict_slash = opts and opts.strict_slash or false,
    caps = {},            -- scratch: the values of the current match
  }, Router)
end

-- The segments of a pattern ("/users/:id/*rest"): { kind, text } each,
-- kind "static", "param" or "splat". Raises at level on a bad pattern.
local function parse_pattern(pattern, level)
  if type(pattern) ~= "string" or str_byte(pattern, 1) ~= SLASH then
    error("pattern must be a string starting with '/'", level + 1)
  end
  local segs = {}
  for seg in pattern:gmatch("[^/]+") do
    local first = str_sub(seg, 1, 1)
    if first == ":" then
      local name = str_sub(seg, 2)
      if not name:match("^[%a_][%w_]*$") then
        error("bad parameter name in pattern " .. pattern .. ": " .. seg, level + 1)
      end
      segs[#segs + 1] = { kind = "param", text = name }
    elseif first == "*" then
      local name = str_sub(seg, 2)
      if name == "" then
        name = "splat"
      elseif not name:match("^[%a_][%w_]*$") then
        error("bad splat name in pattern " .. pattern .. ": " .. seg, level + 1)
      end
      segs[#segs + 1] = { kind = "splat", text = name }
    else
      segs[#segs + 1] = { kind = "static", text = seg }
    end
  end
  for i, s in ipairs(segs) do
    if s.kind == "splat" and i ~= #segs then
      error("a *splat must be the last segment of pattern " .. pattern, level + 1)
    end
  end
  return segs
end

-- The trie node for segs (made as needed).
local function node_for(self, segs)
  local node = self.root
  for _, s in ipairs(segs) do
    if s.kind == "static" then
      local child = node.children[s.text]
      if not child then
        child = new_node()
        node.children[s.text] = child
      end
      node = child
    elseif s.kind == "param" then
      node.param = node.param or new_node()
      node = node.param
    else
      node.splat = node.splat or new_node()
      node = node.splat
    end
  end
  return node
end

-- The Allow value of a node: its methods, HEAD with GET, and OPTIONS.
local function compute_allow(node)
  local list, seen = {}, {}
  for method in pairs(node.routes) do
    list[#list + 1] = method
    seen[method] = true
  end
  if seen.GET and not seen.HEAD then
    list[#list + 1] = "HEAD"
  end
  if not seen.OPTIONS then
    list[#list + 1] = "OPTIONS"
  end
  sort(list)
  node.allow = concat(list, ", ")
end

local METHOD_TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"

--- Adds a route: method ("GET", ...), pattern, handler (any value, given
-- back by resolve), name (optional, for url_for). Returns the entry:
-- { method, pattern, handler, name, names (parameter names in order) }.
function Router:add(method, pattern, handler, name, level)
  level = level or 2
  if type(method) ~= "string" or not method:match(METHOD_TOKEN) then
    error("method must be an HTTP method token", level)
  end
  if handler == nil then
    error("handler is required", level)
  end
  if name ~= nil and type(name) ~= "string" then
    error("name must be a string", level)
  end
  local segs = parse_pattern(pattern, level)
  local names = {}
  for _, s in ipairs(segs) do
    if s.kind ~= "static" then
      names[#names + 1] = s.text
    end
  end
  local node = node_for(self, segs)
  node.routes = node.routes or {}
  if node.routes[method] then
    error("route " .. method .. " " .. pattern .. " is already defined", level)
  end
  local entry = { method = method, pattern = pattern, handler = handler, name = name,
                  names = names, nparams = #names }
  node.routes[method] = entry
  compute_allow(node)
  if #names == 0 then
    local path = "/" .. concat((function()
      local t = {}
      for i, s in ipairs(segs) do
        t[i] = s.text
      end
      return t
    end)(), "/")
    if self.strict_slash then
      self.static[pattern] = node -- as written, "/a/" apart from "/a"
    else
      self.static[path] = node
      if path ~= "/" then
        self.static[path .. "/"] = node
      end
    end
  end
  if name then
    if self.names[name] then
      error("route name '" .. name .. "' is already used", level)
    end
    self.names[name] = segs
  end
  return entry
end

--- Mounts target (any value) under prefix ("/api"): resolve() gives back
-- MOUNT, target and the rest of the path ("/" at least) for every path
-- under prefix that no route of this router matches.
function Router:mount(prefix, target, level)
  level = level or 2
  local segs = parse_pattern(prefix, level)
  for _, s in ipairs(segs) do
    if s.kind ~= "static" then
      error("a mount prefix must not have parameters: " .. prefix, level)
    end
  end
  local node = node_for(self, segs)
  if node.mount then
    error("something is already mounted on " .. prefix, level)
  end
  node.mount = target
end

-- What the last walk saw besides its result: where it stopped at a mount
-- (the index of the rest), and the first node with routes for the path
-- but not for the method (405).
local mount_pos = 0
local allow_node = nil

local function has_method(routes, method)
  return routes[method] ~= nil or (method == "HEAD" and routes.GET ~= nil)
end

-- Walks the trie from node for path[pos..len] (pos: the first byte of the
-- next segment) looking for a route of method; captures go to
-- caps[depth + 1 ...]. Returns the node whose routes have the method, or a
-- node with a mount, or nil.
local function walk(node, path, pos, len, caps, depth, method)
  if pos > len then
    local routes = node.routes
    if routes then
      if has_method(routes, method) then
        return node
      end
      allow_node = allow_node or node
    end
    -- "/files/" for "/files/*rest": an empty splat.
    local s = node.splat
    if s and s.routes then
      if has_method(s.routes, method) then
        caps[depth + 1] = ""
        return s
      end
      allow_node = allow_node or s
    end
    if node.mount then
      mount_pos = pos
      return node
    end
    return nil
  end
  local e = str_find(path, "/", pos, true)
  if e == nil or e > len then
    e = len + 1
  end
  local seg = str_sub(path, pos, e - 1)
  local child = node.children[seg]
  if child then
    local found = walk(child, path, e + 1, len, caps, depth, method)
    if found then
      return found
    end
  end
  local p = node.param
  if p and seg ~= "" then
    local found = walk(p, path, e + 1, len, caps, depth + 1, method)
    if found then
      caps[depth + 1] = seg
      return found
    end
  end
  local s = node.splat
  if s and s.routes then
    if has_method(s.routes, method) then
      caps[depth + 1] = str_sub(path, pos, len)
      return s
    end
    allow_node = allow_node or s
  end
  if node.mount then
    mount_pos = pos - 1 -- the rest starts at its "/"
    return node
  end
  return nil
end

local function decode(v)
  if str_find(v, "%", 1, true) then
    return url_decode(v, false)
  end
  return v
end

-- The params table of entry from the captures.
local function params_of(entry, caps)
  local names = entry.names
  local params = {}
  for i = 1, entry.nparams do
    params[names[i]] = decode(caps[i])
  end
  return params
end

local EMPTY = setmetatable({}, { __newindex = function()
  error("params of a route without parameters cannot be changed", 2)
end })
_M.EMPTY_PARAMS = EMPTY

-- The route of node for method (HEAD falls back to GET).
local function route_of(node, method)
  local routes = node.routes
  local entry = routes[method]
  if entry == nil and method == "HEAD" then
    entry = routes.GET
  end
  return entry
end

--- Finds what handles method and path: FOUND, entry, params; MOUNT,
-- target, rest; METHOD, allow (405); NONE.
function Router:resolve(method, path)
  local node = self.static[path]
  if node then
    local entry = route_of(node, method)
    if entry then
      return FOUND, entry, EMPTY
    end
  end
  local len = #path
  if len > 1 and str_byte(path, len) == SLASH then
    -- Optional trailing slash: ignored. Strict: an empty last segment,
    -- which no parameter matches.
    len = self.strict_slash and len + 1 or len - 1
  end
  local caps = self.caps
  allow_node = nil
  node = walk(self.root, path, 2, len, caps, 0, method)
  if node == nil then
    local allow = allow_node
    allow_node = nil
    if allow then
      return METHOD, allow.allow
    end
    return NONE
  end
  allow_node = nil
  local entry = node.routes and route_of(node, method)
  if entry then
    return FOUND, entry, entry.nparams > 0 and params_of(entry, caps) or EMPTY
  end
  local rest = mount_pos <= #path and str_sub(path, mount_pos) or "/"
  if str_byte(rest, 1) ~= SLASH then
    rest = "/" .. rest
  end
  return MOUNT, node.mount, rest
end

-- Percent-encodes what a path segment cannot hold (keep_slash: for splats).
local function encode_segment(v, keep_slash)
  v = tostring(v)
  local pattern = keep_slash and "[^%w%-%._~!$&'()*+,;=:@/]" or "[^%w%-%._~!$&'()*+,;=:@]"
  return (str_gsub(v, pattern, function(c)
    return str_format("%%%02X", str_byte(c))
  end))
end

local function encode_query(v)
  return (str_gsub(tostring(v), "[^%w%-%._~]", function(c)
    return str_format("%%%02X", str_byte(c))
  end))
end

--- The path of the route named name with params filled in (raises when a
-- parameter is missing) and query (a table) appended.
function Router:url_for(name, params, query, level)
  level = level or 2
  local segs = self.names[name]
  if not segs then
    error("no route named '" .. tostring(name) .. "'", level)
  end
  local out = {}
  for i, s in ipairs(segs) do
    if s.kind == "static" then
      out[i] = s.text
    else
      local v = params and params[s.text]
      if v == nil then
        error("url_for('" .. name .. "') needs parameter '" .. s.text .. "'", level)
      end
      out[i] = encode_segment(v, s.kind == "splat")
    end
  end
  local path = "/" .. concat(out, "/")
  if query ~= nil then
    local keys = {}
    for k in pairs(query) do
      keys[#keys + 1] = tostring(k)
    end
    sort(keys)
    local q = {}
    for i, k in ipairs(keys) do
      q[i] = encode_query(k) .. "=" .. encode_query(query[k])
    end
    if #q > 0 then
      path = path .. "?" .. concat(q, "&")
    end
  end
  return path
end

return _M
