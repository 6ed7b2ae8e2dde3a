-- A small test runner for the Lua tests, plus helpers that run real
-- clients (curl, python3) in the background while a manager keeps polling,
-- so one process can be both the server under test and its observer.
--
-- Prints one line per test and closes with "N passed, N failed, N
-- skipped"; exits non-zero when any test failed, and with SKIP (77,
-- CTest's SKIP_RETURN_CODE) when nothing could run here (T.skip).
local _M = {}

-- The exit code CTest reads as "skipped" (tests/CMakeLists.txt).
_M.SKIP = 77

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

-- What T.skip raises inside a running test.
local Skip = {}
local running = false

function _M.run()
  local passed, failed, skipped = 0, 0, 0
  local only = os.getenv("TEST_ONLY")
  for _, t in ipairs(tests) do
    if not only or t.name:find(only, 1, true) then
      running = true
      local ok, err = xpcall(t.fn, function(e)
        return getmetatable(e) == Skip and e or debug.traceback(e, 2)
      end)
      running = false
      if ok then
        passed = passed + 1
        print("ok     " .. t.name)
      elseif getmetatable(err) == Skip then
        skipped = skipped + 1
        print("skip   " .. t.name .. ": " .. err.reason)
      else
        failed = failed + 1
        print("FAIL   " .. t.name .. "\n" .. tostring(err))
      end
    end
  end
  print(string.format("%d passed, %d failed, %d skipped", passed, failed, skipped))
  io.stdout:flush()
  if failed == 0 and passed == 0 and skipped > 0 then
    _M.exit(_M.SKIP) -- nothing could run here
  end
  _M.exit(failed == 0 and passed > 0 and 0 or 1)
end

-- Functions run by T.exit (so by T.run and T.skip) before the process
-- ends: stop background servers, remove files made outside T.tmpdir().
local exit_hooks = {}
function _M.on_exit(fn)
  exit_hooks[#exit_hooks + 1] = fn
end

-- Runs the exit hooks, removes T.tmpdir() (unless T.keep_tmpdir is set)
-- and exits with code.
function _M.exit(code)
  for i = #exit_hooks, 1, -1 do
    pcall(exit_hooks[i])
  end
  exit_hooks = {}
  if _M.tmpdir_made() and not _M.keep_tmpdir then
    os.execute("rm -rf " .. _M.q(_M.tmpdir()))
  end
  os.exit(code)
end

-- Skips what cannot run here (a missing tool, backend or module), with
-- the reason: outside a test (before T.run), the whole file: prints
-- "skipped: <reason>" and exits 77, which CTest reports as "Skipped",
-- never as passed; inside a test, that test ("skip   <name>: <reason>",
-- counted apart; a file whose every test skipped exits 77 too).
function _M.skip(reason)
  if running then -- inside a test: that test is skipped, the others go on
    error(setmetatable({ reason = reason }, Skip), 0)
  end
  print("skipped: " .. reason)
  io.stdout:flush()
  _M.exit(_M.SKIP)
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
function _M.tmpdir_made()
  return tmpdir ~= nil
end

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
      local out = (read_file(job.base .. ".out") or ""):sub(-2000)
      local err = (read_file(job.base .. ".err") or ""):sub(-2000)
      fail("command timed out: " .. job.cmd .. "\n--- stdout so far:\n" .. out .. "\n--- stderr so far:\n" .. err, 2)
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

-- Returns a function that stops the process whose pid is in pidfile
-- (for T.on_exit: background servers this file started).
function _M.killer(pidfile)
  return function()
    local pid = tonumber(read_file(pidfile) or "")
    if pid then
      os.execute("kill " .. pid .. " 2>/dev/null")
    end
  end
end

-- Starts a Python script (its text, saved as T.tmpdir()/<name>.py) in the
-- background as `python script port pidfile`; the script writes its pid
-- to pidfile once it serves. Waits for that (10 s at most, then 0.2 s
-- more) and stops it at the end of the file.
function _M.python_daemon(name, code, port)
  local script = tmp() .. "/" .. name .. ".py"
  local pidfile = tmp() .. "/" .. name .. ".pid"
  _M.write_file(script, code)
  _M.spawn(_M.q(_M.python) .. " " .. _M.q(script) .. " " .. port .. " " .. _M.q(pidfile))
  _M.on_exit(_M.killer(pidfile))
  local deadline = os.time() + 10
  while not read_file(pidfile) and os.time() < deadline do
    os.execute("sleep 0.05")
  end
  os.execute("sleep 0.2")
end

-- Runs fn in a task of mgr (mgr:spawn), polling mgr until it ends (within
-- timeout_ms, 10 s by default); returns what fn returned, or raises its
-- error.
function _M.in_task(mgr, fn, timeout_ms)
  local done, res = false, nil
  mgr:spawn(function()
    res = { pcall(fn) }
    done = true
  end)
  _M.ok(_M.poll_until(mgr, function() return done end, timeout_ms or 10000), "the task ended")
  if not res[1] then
    error(res[2], 0)
  end
  return unpack(res, 2)
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

-- A port that was free a moment ago: that of a listener on port 0 of mgr,
-- closed again; returns it, and whether mgr was back to no connection
-- within 2 s.
function _M.released_port(mgr)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", function() return 200, "x" end))
  local port = l:port()
  l:close()
  return port, _M.poll_until(mgr, function() return mgr:connection_count() == 0 end, 2000)
end

-- Polls mgr until the stdout of job (T.spawn) matches pattern, the job
-- ends or timeout_ms passes; returns the match (nil when there is none).
function _M.poll_for_output(mgr, job, pattern, timeout_ms)
  local found
  _M.poll_until(mgr, function()
    found = (read_file(job.base .. ".out") or ""):match(pattern)
    return found ~= nil or read_file(job.base .. ".rc") ~= nil
  end, timeout_ms)
  return found
end

-- scripts/test-sanitize.sh sets ASAN_OPTIONS: AddressSanitizer's allocator
-- (redzones, a quarantine of freed memory) makes RSS figures meaningless
-- and cannot run under a memory ulimit.
_M.sanitized = os.getenv("ASAN_OPTIONS") ~= nil

_M.python = os.getenv("PYTHON") or "/usr/bin/python3"
_M.luajit = os.getenv("LUAJIT") or "luajit"
_M.source_dir = os.getenv("MGFFI_SOURCE_DIR") or "../.."
_M.build_dir = os.getenv("MGFFI_BUILD_DIR") or (_M.source_dir .. "/build")

---------------------------------------------------------------------------
-- Shell scripts and curl
---------------------------------------------------------------------------

-- Runs a shell script in the background while mgr (if given) polls. The
-- script goes through a file so that newlines, quotes and "$" reach the
-- shell intact; its exit status is recorded by the script itself.
-- Returns stdout, exit status, stderr.
local script_seq = 0
function _M.sh(mgr, script, timeout_ms)
  script_seq = script_seq + 1
  local base = tmp() .. "/sh" .. script_seq
  _M.write_file(base .. ".sh", "(\n" .. script .. "\n)\necho $? >" .. base .. ".status\n")
  local out, _, err = _M.run_client(mgr, "sh " .. base .. ".sh", timeout_ms or 10000)
  return out, tonumber(read_file(base .. ".status") or ""), err
end

-- curl -sS with a limit of max_time seconds (default 5) while mgr polls;
-- args is the rest of the command line, already quoted. Returns stdout,
-- curl's exit status, stderr.
function _M.curl(mgr, args, timeout_ms, max_time)
  return _M.sh(mgr, "curl -sS -m " .. (max_time or 5) .. " " .. args, timeout_ms)
end

-- Splits `curl -i` output (or any raw HTTP/1.x response) into status,
-- headers (lower-case names, last value wins), body and head; follows a
-- 100 Continue to the real response. nil when there is no head.
function _M.parse_response(text)
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  if not head then
    return nil
  end
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  if status == 100 then
    return _M.parse_response(body)
  end
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  return { status = status, headers = headers, body = body, head = head }
end

-- A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked
-- it for a socket that python closed again).
function _M.free_port()
  local out = _M.run_client(nil, _M.python .. [[ -c "import socket; s=socket.socket(); ]]
                            .. [[s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]])
  return assert(tonumber(out), "no free port")
end

-- True when cmd is a program on PATH.
function _M.have_command(cmd)
  local _, rc = _M.run_client(nil, "command -v " .. _M.q(cmd) .. " >/dev/null")
  return rc == 0
end

-- True when python3 can import module.
function _M.have_python_module(module)
  local _, rc = _M.run_client(nil, _M.q(_M.python) .. " -c " .. _M.q("import " .. module))
  return rc == 0
end

-- Skips the file (T.skip) unless python3 can import module; package is
-- the Debian package that brings it (scripts/setup-deps.sh installs it).
function _M.need_python_module(module, package)
  if not _M.have_python_module(module) then
    _M.skip("python3 cannot import " .. module .. " (apt-get install " .. package .. ")")
  end
end

---------------------------------------------------------------------------
-- Managers, bytes, CPU time
---------------------------------------------------------------------------

-- For files whose tests each use a manager of their own: returns
-- new_mgr() (a new manager: make(), or mongoose.new_manager(make) when
-- make is a table of options) and mgr_test(name, fn), a test running
-- fn(mgr) with a new manager, closed after fn returns.
function _M.managers(make)
  local function new_mgr()
    if type(make) == "function" then
      return (make())
    end
    return assert(require("mongoose").new_manager(make))
  end
  local function mgr_test(name, fn)
    _M.test(name, function()
      local mgr = new_mgr()
      fn(mgr)
      mgr:close()
    end)
  end
  return new_mgr, mgr_test
end

function _M.logging_manager(opts)
  local logs = {}
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.log = function(level, msg)
    logs[#logs + 1] = { level = level, msg = msg }
  end
  return assert(require("mongoose").new_manager(o)), logs
end

-- The first entry of logs (from index `from`, default 1) whose message
-- contains text (plain find) and, if level is given, has that level.
function _M.find_log(logs, text, level, from)
  for i = from or 1, #logs do
    local e = logs[i]
    if e.msg:find(text, 1, true) and (level == nil or e.level == level) then
      return e
    end
  end
  return nil
end

-- How many entries of logs contain text (plain find).
function _M.count_logs(logs, text)
  local n = 0
  for _, e in ipairs(logs) do
    n = n + (e.msg:find(text, 1, true) and 1 or 0)
  end
  return n
end

-- n pseudo-random bytes (xorshift32), the same for the same seed.
function _M.random_bytes(n, seed)
  local ffi, bit = require("ffi"), require("bit")
  local buf = ffi.new("uint8_t[?]", n)
  local x = seed or 2463534242
  for i = 0, n - 1 do
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    buf[i] = bit.band(x, 255)
  end
  return ffi.string(buf, n)
end

-- Adler-32 of s (the same as Python's zlib.adler32).
function _M.adler32(s)
  local p = require("ffi").cast("const uint8_t *", s)
  local a, b = 1, 0
  for i = 0, #s - 1 do
    a = (a + p[i]) % 65521
    b = (b + a) % 65521
  end
  return b * 65536 + a
end

-- CPU time of process pid (this process by default) so far, in clock
-- ticks (utime + stime); nil when there is no such process.
function _M.cpu_ticks(pid)
  local stat = read_file("/proc/" .. (pid or "self") .. "/stat")
  if not stat then
    assert(pid, "no /proc/self/stat")
    return nil
  end
  local fields = {}
  for f in stat:match("%) (.*)$"):gmatch("%S+") do
    fields[#fields + 1] = f
  end
  -- fields[1] is field 3 (state): utime is field 14, stime field 15.
  return tonumber(fields[12]) + tonumber(fields[13])
end

-- The resident set size of process pid (this process by default), in
-- KiB; nil when there is no such process.
function _M.rss_kib(pid)
  local status = read_file("/proc/" .. (pid or "self") .. "/status")
  return status and tonumber(status:match("VmRSS:%s+(%d+)"))
end

-- Polls mgr for ms milliseconds (timers and connections keep running).
function _M.sleep_polling(mgr, ms)
  local millis = require("mongoose.core").millis
  local deadline = millis() + ms
  while millis() < deadline do
    mgr:poll(deadline - millis())
  end
end

return _M
