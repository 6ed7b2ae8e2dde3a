-- The FFI declarations in lua/mongoose/*.lua must match the compiled
-- library: struct sizes and field offsets (from the library's own layout
-- table), every function prototype of include/mongoose_ffi.h, and the
-- values of the event, flag and status constants.
local T = require("testlib")
local ffi = require("ffi")
local core = require("mongoose.core")
-- Every module that declares C functions.
for _, name in ipairs({ "mongoose", "mongoose.http", "mongoose.websocket", "mongoose.websocket_server", "mongoose.net",
                        "mongoose.tls", "mongoose.luv", "mongoose.web.crypto", "mongoose.ngx" }) do
  require(name)
end

local header_path = T.source_dir .. "/include/mongoose_ffi.h"
local header = assert(T.read_file(header_path), "cannot read " .. header_path)

local function normalize(decl)
  decl = decl:gsub("/%*.-%*/", ""):gsub("%s+", " ")
  decl = decl:gsub("%s*([%(%),%*])%s*", "%1"):gsub("^%s+", ""):gsub("%s+$", "")
  return decl
end

-- Prototypes of the header: "MGFFI_API <decl>;" possibly over several lines.
local function header_prototypes()
  local protos = {}
  for decl in header:gmatch("MGFFI_API%s+([^;]+);") do
    local name = decl:match("(mgffi_[%w_]+)%s*%(")
    if name then
      protos[name] = normalize(decl)
    end
  end
  return protos
end

-- Prototypes declared in the Lua modules' ffi.cdef blocks.
local function lua_prototypes()
  local protos = {}
  local dir = T.q(T.source_dir .. "/lua/mongoose")
  local p = io.popen("ls " .. dir .. "/*.lua " .. dir .. "/web/*.lua")
  for file in p:lines() do
    local src = assert(T.read_file(file))
    for block in src:gmatch("cdef%s*%[%[(.-)%]%]") do
      for decl in block:gmatch("[^;]+;") do
        local name = decl:match("(mgffi_[%w_]+)%s*%(")
        if name and not decl:find("typedef") then
          protos[name] = normalize(decl:sub(1, -2))
        end
      end
    end
  end
  p:close()
  return protos
end

T.test("ABI version matches", function()
  T.eq(core.C.mgffi_abi_version(), core.ABI_VERSION, "abi version")
  T.eq(tonumber(header:match("#define MGFFI_ABI_VERSION (%d+)")), core.ABI_VERSION, "header abi version")
end)

T.test("struct sizes and field offsets match the library", function()
  local count = ffi.new("size_t[1]")
  local entries = core.C.mgffi_layout(count)
  local n = tonumber(count[0])
  T.ok(n > 40, "layout table has entries")
  local checked_types = {}
  for i = 0, n - 1 do
    local e = entries[i]
    local type_name = ffi.string(e.type)
    checked_types[type_name] = true
    if e.field == nil then
      T.eq(ffi.sizeof(type_name), tonumber(e.size), "sizeof(" .. type_name .. ")")
    else
      local field = ffi.string(e.field)
      T.eq(ffi.offsetof(type_name, field), tonumber(e.offset), "offsetof(" .. type_name .. ", " .. field .. ")")
      local field_size
      local obj = ffi.new(type_name)
      if type(obj[field]) == "cdata" then
        field_size = ffi.sizeof(obj[field])
      else
        -- A number field: set all its bits and count the bytes that changed.
        obj[field] = -1
        local bytes = ffi.cast("const uint8_t *", obj)
        field_size = 0
        for b = 0, ffi.sizeof(type_name) - 1 do
          if bytes[b] ~= 0 then
            field_size = field_size + 1
          end
        end
      end
      T.eq(field_size, tonumber(e.size), "sizeof(" .. type_name .. "." .. field .. ")")
    end
  end
  -- Every struct typedef in the header is covered by the layout table.
  for name in header:gmatch("typedef struct (mgffi_[%w_]+) {") do
    T.ok(checked_types[name], "layout table covers " .. name)
  end
end)

T.test("every header prototype is declared identically in Lua", function()
  local h, l = header_prototypes(), lua_prototypes()
  local n = 0
  for name, decl in pairs(h) do
    n = n + 1
    T.eq(l[name], decl, "declaration of " .. name)
    T.ok(core.C[name] ~= nil, name .. " resolves in the library")
  end
  T.ok(n >= 30, "header has the expected number of functions (" .. n .. ")")
  for name in pairs(l) do
    T.ok(h[name] ~= nil, name .. " is declared in Lua but not in the header")
  end
end)

T.test("constants match the header", function()
  local seen = 0
  for name, value in header:gmatch("(MGFFI_EV_[%w_]+) = (%d+)") do
    T.eq(core.EV[name:sub(10)], tonumber(value), name)
    seen = seen + 1
  end
  for name, value in header:gmatch("(MGFFI_ERR_[%w_]+) = (%-%d+)") do
    T.eq(tonumber(core.C[name]), tonumber(value), name)
    seen = seen + 1
  end
  for name, shift in header:gmatch("MGFFI_F_([%w_]+) = 1u << (%d+)") do
    T.eq(core.F[name], 2 ^ tonumber(shift), "MGFFI_F_" .. name)
    seen = seen + 1
  end
  local serve_flags = require("mongoose.response").SERVE_FLAGS
  for name, shift in header:gmatch("MGFFI_SERVE_([%w_]+) = 1u << (%d+)") do
    T.eq(serve_flags[name], 2 ^ tonumber(shift), "MGFFI_SERVE_" .. name)
    seen = seen + 1
  end
  for name, value in header:gmatch("MGFFI_PROTO_([%w_]+) = (%d+)") do
    T.eq(core.PROTO[name], tonumber(value), "MGFFI_PROTO_" .. name)
    seen = seen + 1
  end
  T.ok(seen > 30, "constants checked: " .. seen)
end)

T.run()
