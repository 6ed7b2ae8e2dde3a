-- What the luv tests share (mongoose.luv under a libuv loop): requiring
-- this module skips the test (T.skip) when require("luv") fails. Handles
-- and managers made through track() and new_manager() are closed after
-- every test() (also a failed one), so a failure does not leak into the
-- next test; loops, clients (curl by uv.spawn, luv TCP) and child LuaJIT
-- processes all run under uv.run.
local T = require("testlib")
local mongoose = require("mongoose")

local has_luv, uv = pcall(require, "luv")
if not has_luv then
  T.skip("require(\"luv\") failed under this LuaJIT (" .. tostring(uv):match("^[^\n]*")
         .. "): apt-get install lua-luv")
end

local HOST = "127.0.0.1"

---------------------------------------------------------------------------
-- Helpers: tracked handles and managers are closed after every test, also
-- after a failed one, so a failure does not leak into the next test.
---------------------------------------------------------------------------

local tracked = {}
local managers = {}

local function track(h)
  tracked[#tracked + 1] = h
  return h
end

local function new_manager()
  local mgr = assert(mongoose.new_manager())
  managers[#managers + 1] = mgr
  return mgr
end

local function close_handle(h)
  if h and not h:is_closing() then
    h:close()
  end
end

local function cleanup()
  for _, h in ipairs(tracked) do
    if h.kill and not h:is_closing() then
      pcall(h.kill, h, "sigkill")
    end
    close_handle(h)
  end
  tracked = {}
  for _, mgr in ipairs(managers) do
    if not mgr.closed then
      mgr:close()
    end
  end
  managers = {}
  uv.run("nowait")  -- runs the close callbacks
end

local function test(name, fn)
  T.test(name, function()
    local ok, err = xpcall(fn, debug.traceback)
    cleanup()
    if not ok then
      error(err, 0)
    end
  end)
end

local function ms_now()
  return uv.hrtime() / 1e6
end

-- Runs the luv loop until cond() is true, at most timeout_ms.
local function loop_until(cond, timeout_ms, what)
  local timed_out = false
  local guard = uv.new_timer()
  guard:start(timeout_ms, 0, function()
    timed_out = true
  end)
  while not cond() and not timed_out do
    uv.run("once")
  end
  guard:close()
  uv.run("nowait")
  T.ok(cond(), (what or "condition") .. " within " .. timeout_ms .. " ms")
end

-- Runs the luv loop for ms milliseconds.
local function loop_for(ms)
  local done = false
  local t = uv.new_timer()
  t:start(ms, 0, function()
    done = true
  end)
  while not done do
    uv.run("once")
  end
  t:close()
  uv.run("nowait")
end

-- Runs a program with uv.spawn; cb(exit_code, stdout, stderr) once it has
-- exited and its output is complete.
local function spawn(file, args, cb)
  local pipes = { track(uv.new_pipe(false)), track(uv.new_pipe(false)) }
  local chunks = { {}, {} }
  local code, open = nil, 2
  local function done()
    if code ~= nil and open == 0 then
      cb(code, table.concat(chunks[1]), table.concat(chunks[2]))
    end
  end
  local proc, pid_or_err
  proc, pid_or_err = uv.spawn(file, { args = args, stdio = { nil, pipes[1], pipes[2] } }, function(exit_code)
    code = exit_code
    proc:close()
    done()
  end)
  assert(proc, pid_or_err)
  track(proc)
  for i, pipe in ipairs(pipes) do
    pipe:read_start(function(err, data)
      assert(not err, err)
      if data then
        local c = chunks[i]
        c[#c + 1] = data
      else
        open = open - 1
        pipe:close()
        done()
      end
    end)
  end
  return proc
end

-- Runs a Lua program in a child LuaJIT (same LUA_PATH and LUA_CPATH): an
-- uncaught error in a luv callback ends the whole process, so code that may
-- hit one runs there. Waits for it; returns exit code, stdout, stderr.
local luajit = T.luajit
local child_seq = 0
local function run_child(code, timeout_ms)
  child_seq = child_seq + 1
  local path = T.tmpdir() .. "/luv-child-" .. child_seq .. ".lua"
  T.write_file(path, code)
  local rc, out, err
  spawn(luajit, { path }, function(c, o, e)
    rc, out, err = c, o, e
  end)
  loop_until(function() return rc ~= nil end, timeout_ms or 10000, "child process")
  return rc, out, err
end

local function curl(args, cb)
  local all = { "-s", "--max-time", "10" }
  for _, a in ipairs(args) do
    all[#all + 1] = a
  end
  return spawn("curl", all, cb)
end

-- Runs curl (args) and the loop until it ends (10 s at most, a failure
-- named what, "curl" by default); returns its exit code and stdout.
local function curl_wait(args, what)
  local code, body
  curl(args, function(c, out)
    code, body = c, out
  end)
  loop_until(function() return code ~= nil end, 10000, what or "curl")
  return code, body
end

-- Checks that a curl of base .. path gets hello_server's answer.
local function expect_hello(base, path)
  local code, body = curl_wait({ base .. path })
  T.eq(code, 0, "curl exit")
  T.eq(body, "hello " .. path .. "\n")
end

-- A luv TCP client: connects, writes each of the strings of sends (the
-- next one after on_data says so), collects what it reads until EOF.
-- Returns a state table: .data, .eof, .err, .tcp, .times (ms of each read).
local function luv_client(port, first, on_data)
  local st = { data = "", eof = false, times = {} }
  local tcp = track(uv.new_tcp())
  st.tcp = tcp
  tcp:connect(HOST, port, function(err)
    if err then
      st.err = err
      st.eof = true
      tcp:close()
      return
    end
    st.connected = ms_now()
    tcp:read_start(function(rerr, chunk)
      if rerr then
        st.err = rerr
      end
      if chunk then
        st.data = st.data .. chunk
        st.times[#st.times + 1] = ms_now()
        if on_data then
          on_data(st, chunk)
        end
      else
        st.eof = true
        if not tcp:is_closing() then
          tcp:close()
        end
      end
    end)
    if first then
      tcp:write(first)
    end
  end)
  return st
end

-- The handles of an attachment, to look for them in uv.walk later.
local function attachment_handles(att)
  local hs = {}
  for _, name in ipairs({ "poll", "prepare", "timer" }) do
    if att[name] then
      hs[#hs + 1] = att[name]
    end
  end
  return hs
end

local function walked_handles()
  local set, n = {}, 0
  uv.walk(function(h)
    set[h] = true
    n = n + 1
  end)
  return set, n
end

local function hello_server(mgr, opts)
  local server = assert(mgr:http_listen("http://" .. HOST .. ":0", function(req, res)
    if req.path == "/big" then
      return 200, string.rep("0123456789abcdef", 131072)  -- 2 MiB
    elseif req.path == "/echo" then
      return 200, "got " .. #req:body() .. " bytes\n"
    end
    return 200, "hello " .. req.path .. "\n", { ["Content-Type"] = "text/plain" }
  end, opts))
  return server, "http://" .. HOST .. ":" .. server:port()
end

return {
  uv = uv, HOST = HOST, test = test, track = track, new_manager = new_manager, cleanup = cleanup,
  ms_now = ms_now, loop_until = loop_until, loop_for = loop_for, spawn = spawn, run_child = run_child,
  curl = curl, curl_wait = curl_wait, expect_hello = expect_hello, luv_client = luv_client,
  attachment_handles = attachment_handles,
  walked_handles = walked_handles, hello_server = hello_server,
}
