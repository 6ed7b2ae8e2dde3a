-- mongoose.serve_options: the options of res:serve_dir and res:serve_file
-- (index, listing, dotfiles, symlinks, cache_control, precompressed,
-- spa_fallback, mime_types, headers, path, fallthrough), checked with
-- errors at the caller's level and compiled once into the strings and
-- flags of the C layer's mgffi_serve_opts (see docs/http.md).
local core = require("mongoose.core")

local type, error, pairs, tostring = type, error, pairs, tostring
local getmetatable, setmetatable, concat = getmetatable, setmetatable, table.concat

local _M = {}

-- enum mgffi_serve_flags.
local FLAGS = { LISTING = 1, DOTFILES = 2, SYMLINKS_ANY = 4, SYMLINKS_NONE = 8, FALLTHROUGH = 16 }
_M.FLAGS = FLAGS
local SYMLINKS = { inside = 0, any = FLAGS.SYMLINKS_ANY, none = FLAGS.SYMLINKS_NONE }
local CODINGS = { br = true, gzip = true, zstd = true }

local ServeOptions = core.class("mongoose.ServeOptions")
_M.ServeOptions = ServeOptions

-- A file name for index or spa_fallback: a path under the root.
local function check_rel(v, name, level, nested)
  if type(v) ~= "string" or v == "" or v:find("[%z\r\n]") or v:sub(1, 1) == "/"
      or (not nested and v:find("/", 1, true)) then
    error(name .. " must be a file name" .. (nested and " under the root" or ""), level + 1)
  end
  for seg in v:gmatch("[^/]+") do
    if seg == "." or seg == ".." then
      error(name .. " must not contain '.' or '..' segments", level + 1)
    end
  end
  return v
end

local function index_name(v, name, level)
  check_rel(v, name, level + 1)
  if v:find(",", 1, true) then
    error(name .. " must not contain ','", level + 1)
  end
  return v
end

local function header_value(v, name, level)
  if type(v) ~= "string" or v == "" or v:find("[\r\n\t%z]") then
    error(name .. " must be a non-empty header value", level + 1)
  end
  return v
end

local function cache_rule(rule, name, level)
  if type(rule) ~= "table" or type(rule[1]) ~= "string" or rule[1] == ""
      or rule[1]:find("[\r\n\t%z]") then
    error(name .. " must be { pattern, value }", level + 1)
  end
  return rule[1] .. "\t" .. header_value(rule[2], name .. " value", level + 1)
end

local function coding(v, name, level)
  if not CODINGS[v] then
    error(name .. " must be \"br\", \"gzip\" or \"zstd\"", level + 1)
  end
  return v
end

local function mime_types(v, name, level)
  if v:find("[\r\n%z]") then
    error(name .. " must be a string like \"ext=type,ext2=type2\"", level + 1)
  end
  return v
end

local function mime_table(v, name, level)
  local items = {}
  for ext, mime in pairs(v) do
    if type(ext) ~= "string" or not ext:find("^%.?[%w_%-%+%.]+$") then
      error(name .. ": invalid extension " .. tostring(ext), level + 1)
    end
    if type(mime) ~= "string" or mime == "" or mime:find("[,\r\n%z]") then
      error(name .. ": invalid type for " .. ext, level + 1)
    end
    items[#items + 1] = ext .. "=" .. mime
  end
  table.sort(items)
  return concat(items, ",")
end

-- The string options: what nil, false and true stand for, how a string
-- (one) and a table (a list of items joined with sep, or whole) are read.
-- (The readers are never tail-called: error levels count their callers.)
local STRINGS = {
  index = { default = "index.html", off = "", one = check_rel, item = index_name, sep = ",",
            expected = "a file name, a list of them or false" },
  mime_types = { default = "", one = mime_types, whole = mime_table,
                 expected = "a string like \"ext=type,ext2=type2\" or a table" },
  cache_control = { default = "", off = "", one = function(v, name, level)
                      return "*\t" .. header_value(v, name, level + 1)
                    end, item = cache_rule, sep = "\n",
                    expected = "a string or a list of { pattern, value }" },
  precompressed = { default = "br,gzip", off = "", on = "br,gzip", item = coding, sep = ",",
                    expected = "a boolean or a list of codings" },
  spa_fallback = { default = "", off = "", on = "index.html", one = function(v, name, level)
                     local path = check_rel(v, name, level + 1, true)
                     return path
                   end, expected = "true, false or a file name under the root" },
}

local function compile_string(v, name, level)
  local spec = STRINGS[name]
  if v == nil then
    return spec.default
  elseif v == false and spec.off then
    return spec.off
  elseif v == true and spec.on then
    return spec.on
  elseif type(v) == "string" and spec.one then
    local r = spec.one(v, name, level + 1)
    return r
  elseif type(v) == "table" and spec.whole then
    local r = spec.whole(v, name, level + 1)
    return r
  elseif type(v) == "table" and spec.item then
    local out = {}
    for i = 1, #v do
      out[i] = spec.item(v[i], name .. "[" .. i .. "]", level + 1)
    end
    return concat(out, spec.sep)
  end
  error(name .. " must be " .. spec.expected, level + 1)
end

local KEYS = { headers = true, listing = true, dotfiles = true, symlinks = true, fallthrough = true,
               path = true }
for name in pairs(STRINGS) do
  KEYS[name] = true
end

local function flag(opts, name, bit, level)
  local v = opts[name]
  if v ~= nil and type(v) ~= "boolean" then
    error(name .. " must be a boolean", level + 1)
  end
  return v and bit or 0
end

--- Checks opts (nil, a table, or options compiled already) and returns
-- them compiled. Errors point at level.
function _M.compile(opts, level)
  if getmetatable(opts) == ServeOptions then
    return opts
  end
  opts = core.opt_table(opts, level + 1)
  for k in pairs(opts) do
    if not KEYS[k] then
      error("unknown option '" .. tostring(k) .. "'", level + 1)
    end
  end
  local symlinks = SYMLINKS[opts.symlinks == nil and "inside" or opts.symlinks]
  if not symlinks then
    error("symlinks must be \"inside\", \"any\" or \"none\"", level + 1)
  end
  core.check_option(opts, "path", "string", level + 1)
  core.check_option(opts, "headers", "table", level + 1)
  local compiled = {
    flags = flag(opts, "listing", FLAGS.LISTING, level + 1) + flag(opts, "dotfiles", FLAGS.DOTFILES, level + 1)
      + flag(opts, "fallthrough", FLAGS.FALLTHROUGH, level + 1) + symlinks,
    headers = opts.headers, path = opts.path,
  }
  for name in pairs(STRINGS) do
    compiled[name] = compile_string(opts[name], name, level + 1)
  end
  return setmetatable(compiled, ServeOptions)
end

return _M
