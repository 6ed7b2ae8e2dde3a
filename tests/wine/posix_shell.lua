-- LUA_INIT of the Lua tests under Wine (scripts/test-windows.sh): the
-- tests start their peers (curl, python3, sh scripts) with os.execute and
-- io.popen, which on Windows go through cmd.exe, which cannot run Linux
-- programs. Under Wine, CreateProcess can: this replaces both with
-- versions that hand the command to the Linux /bin/sh, through a script
-- file (no cmd.exe quoting), and wait for the status the script writes
-- (Wine gives no process handle for a Linux program). Only for tests: the
-- library never runs commands.
local ffi = require("ffi")

if ffi.os ~= "Windows" then
  return
end

ffi.cdef([[
typedef struct {
  uint32_t cb;
  void *reserved, *desktop, *title;
  uint32_t x, y, xsize, ysize, xchars, ychars, fill, flags;
  uint16_t show, reserved2;
  void *reserved3, *in, *out, *err;
} mgffi_wine_startupinfo;
typedef struct { void *process, *thread; uint32_t pid, tid; } mgffi_wine_procinfo;
int CreateProcessA(const char *app, char *cmdline, void *pattr, void *tattr, int inherit,
                   uint32_t flags, void *env, const char *dir, mgffi_wine_startupinfo *si,
                   mgffi_wine_procinfo *pi);
int CreateDirectoryA(const char *path, void *attr);
int CloseHandle(void *h);
uint32_t GetCurrentProcessId(void);
void Sleep(uint32_t ms);
]])
local C = ffi.C

local dir = string.format("%s/mgffi-wine-%d-%d", os.getenv("MGFFI_WINE_TMP") or "/tmp",
                          C.GetCurrentProcessId(), os.time())
C.CreateDirectoryA(dir, nil)
local seq = 0

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs script under /bin/sh; returns its exit status. The Linux PATH,
-- which Wine replaces with the Windows one, comes back first.
local function sh(script)
  seq = seq + 1
  local base = dir .. "/" .. seq
  local f = assert(io.open(base .. ".sh", "wb"))
  f:write("export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n", "(\n", script, "\n)\n",
          "echo $? >", base, ".rc.tmp; mv ", base, ".rc.tmp ", base, ".rc\n")
  f:close()
  local si = ffi.new("mgffi_wine_startupinfo")
  si.cb = ffi.sizeof(si)
  local pi = ffi.new("mgffi_wine_procinfo")
  local cmdline = "/bin/sh " .. base .. ".sh"
  local buf = ffi.new("char[?]", #cmdline + 1, cmdline)
  if C.CreateProcessA(nil, buf, nil, nil, 0, 0, nil, nil, si, pi) == 0 then
    return 127
  end
  if pi.process ~= nil then
    C.CloseHandle(pi.process)
  end
  if pi.thread ~= nil then
    C.CloseHandle(pi.thread)
  end
  local rc
  while true do
    rc = read_file(base .. ".rc")
    if rc then
      break
    end
    C.Sleep(2)
  end
  os.remove(base .. ".sh")
  os.remove(base .. ".rc")
  return tonumber(rc) or 1, base
end

-- os.execute(cmd): cmd's exit status (Lua 5.1's number).
function os.execute(cmd) -- luacheck: ignore 122
  if cmd == nil then
    return 1 -- a shell is available
  end
  return (sh(cmd .. " </dev/null"))
end

-- os.tmpname(): a new empty file under /tmp, as on Linux (the C runtime's
-- names a file in the drive's root, "\sXXXX.", which the shell commands
-- the tests pass it to would take for a relative name).
local tmp_seq = 0
function os.tmpname() -- luacheck: ignore 122
  tmp_seq = tmp_seq + 1
  local name = string.format("/tmp/lua_wine_%d_%d_%d", C.GetCurrentProcessId(), os.time(), tmp_seq)
  local f = assert(io.open(name, "wb"))
  f:close()
  return name
end

-- io.popen(cmd) for reading: cmd runs to its end, then its output is read
-- from a file.
local io_open = io.open
function io.popen(cmd, mode) -- luacheck: ignore 122
  if mode ~= nil and mode ~= "r" then
    error("io.popen under Wine: only mode 'r'", 2)
  end
  seq = seq + 1
  local out = dir .. "/popen" .. seq .. ".out"
  sh("( " .. cmd .. " ) </dev/null >" .. out)
  return io_open(out, "rb")
end
