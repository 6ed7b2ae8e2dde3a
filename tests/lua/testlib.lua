-- A small test runner for the Lua tests, plus helpers that run real
-- clients (curl, python3) in the background while a manager keeps polling,
-- so one process can be both the server under test and its observer.
--
-- Prints one line per test and closes with "N passed, N failed"; exits
-- non-zero when any test failed.
local _M = {}

local tests = {}

function _M.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

local function fail(msg, level)
  error(msg, (level or 1) + 1)
end

local function show(v)
  if type(v) == "string" then
    if #v > 200 then
      v = v:sub(1, 200) .. "...(" .. #v .. " bytes)"
    end
    return string.format("%q", v)
  end
  return tostring(v)
end

function _M.eq(actual, expected, what)
  if actual ~= expected then
    fail((what or "value") .. ": expected " .. show(expected) .. ", got " .. show(actual), 2)
  end
end

function _M.ok(value, what)
  if not value then
    fail((what or "expected a true value") .. " (got " .. show(value) .. ")", 2)
  end
  return value
end

function _M.match(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    fail((what or "string") .. ": " .. show(s) .. " does not match " .. show(pattern), 2)
  end
end

-- Asserts that fn(...) raises an error whose message matches pattern.
function _M.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then
    fail("expected an error matching " .. show(pattern), 2)
  end
  if not tostring(err):find(pattern) then
    fail("error " .. show(tostring(err)) .. " does not match " .. show(pattern), 2)
  end
end

function _M.run()
  local passed, failed = 0, 0
  local only = os.getenv("TEST_ONLY")
  for _, t in ipairs(tests) do
    if not only or t.name:find(only, 1, true) then
      local ok, err = xpcall(t.fn, debug.traceback)
      if ok then
        passed = passed + 1
        print("ok     " .. t.name)
      else
        failed = failed + 1
        print("FAIL   " .. t.name .. "\n" .. tostring(err))
      end
    end
  end
  print(string.format("%d passed, %d failed", passed, failed))
  io.stdout:flush()
  os.exit(failed == 0 and passed > 0 and 0 or 1)
end

---------------------------------------------------------------------------
-- Background commands
---------------------------------------------------------------------------

local tmpdir
local function tmp()
  if not tmpdir then
    local p = io.popen("mktemp -d /tmp/mgffi-test.XXXXXX")
    tmpdir = p:read("*l")
    p:close()
  end
  return tmpdir
end
_M.tmpdir = tmp

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end
_M.read_file = read_file

function _M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- Shell-quotes a string.
function _M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local job_seq = 0

-- Starts a shell command in the background; returns a job.
function _M.spawn(cmd)
  job_seq = job_seq + 1
  local base = tmp() .. "/job" .. job_seq
  local script = string.format("( %s ) >%s.out 2>%s.err; echo $? >%s.rc.tmp; mv %s.rc.tmp %s.rc",
                               cmd, base, base, base, base, base)
  os.execute("sh -c " .. _M.q(script) .. " </dev/null >/dev/null 2>&1 &")
  return { base = base, cmd = cmd }
end

-- Polls mgr (if given) until the job ends; returns stdout, exit code, stderr.
function _M.wait(job, mgr, timeout_ms)
  local socket_deadline = os.time() + math.ceil((timeout_ms or 30000) / 1000) + 1
  while true do
    local rc = read_file(job.base .. ".rc")
    if rc then
      return read_file(job.base .. ".out") or "", tonumber(rc), read_file(job.base .. ".err") or ""
    end
    if os.time() > socket_deadline then
      fail("command timed out: " .. job.cmd, 2)
    end
    if mgr then
      mgr:poll(5)
    else
      os.execute("sleep 0.01")
    end
  end
end

-- Runs cmd in the background while polling mgr; returns stdout, rc, stderr.
function _M.run_client(mgr, cmd, timeout_ms)
  return _M.wait(_M.spawn(cmd), mgr, timeout_ms)
end

-- Polls mgr until cond() is true or timeout_ms passes; returns cond().
function _M.poll_until(mgr, cond, timeout_ms)
  local core = require("mongoose.core")
  local deadline = core.millis() + (timeout_ms or 5000)
  while not cond() do
    if core.millis() > deadline then
      return cond()
    end
    mgr:poll(5)
  end
  return true
end

_M.python = os.getenv("PYTHON") or "/usr/bin/python3"
_M.source_dir = os.getenv("MGFFI_SOURCE_DIR") or "../.."
_M.build_dir = os.getenv("MGFFI_BUILD_DIR") or (_M.source_dir .. "/build")

return _M
