-- Runs every ```lua block of README.md and docs/*.md as its own LuaJIT
-- process. Manager.run is patched to stop by itself after a short while, so
-- snippets that serve forever terminate; each block must exit with 0.
local T = require("testlib")

local root = T.source_dir
local luajit = os.getenv("LUAJIT") or "luajit"

local PREAMBLE = [[
local M = require("mongoose.manager").Manager
local run = M.run
M.run = function(self, opts)
  self:set_timeout(300, function() self:stop() end)
  return run(self, opts)
end
]]

local function markdown_files()
  local files = { root .. "/README.md" }
  local p = io.popen("ls " .. T.q(root .. "/docs") .. "/*.md 2>/dev/null")
  for f in p:lines() do
    files[#files + 1] = f
  end
  p:close()
  return files
end

local function lua_blocks(text)
  local blocks = {}
  local line_no = 1
  local pos = 1
  while true do
    local s, e = text:find("```lua\n", pos, true)
    if not s then break end
    local close = text:find("\n```", e, true)
    if not close then break end
    local _, nl = text:sub(pos, s):gsub("\n", "")
    line_no = line_no + nl
    blocks[#blocks + 1] = { code = text:sub(e + 1, close), line = line_no + 1 }
    local _, inner = text:sub(s + 1, close):gsub("\n", "")
    line_no = line_no + inner
    pos = close + 4
  end
  return blocks
end

local total = 0
for _, file in ipairs(markdown_files()) do
  local text = assert(T.read_file(file), "cannot read " .. file)
  local name = file:gsub("^.*/", "")
  for i, block in ipairs(lua_blocks(text)) do
    total = total + 1
    T.test(string.format("%s block %d (line %d)", name, i, block.line), function()
      local path = string.format("%s/snippet_%s_%d.lua", T.tmpdir(), name:gsub("%W", "_"), i)
      T.write_file(path, PREAMBLE .. block.code)
      local out, rc, err = T.run_client(nil, "timeout 30 " .. luajit .. " " .. T.q(path), 35000)
      if rc ~= 0 then
        error(string.format("exit %d\n--- code:\n%s\n--- stdout:\n%s\n--- stderr:\n%s", rc, block.code, out, err))
      end
    end)
  end
end

T.test("README has snippets", function()
  T.ok(total >= 5, "found " .. total .. " lua blocks")
end)

T.run()
