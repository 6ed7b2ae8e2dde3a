-- Running the programs in examples/ as a user would: started in the
-- background with LuaJIT (their pid recorded), waited for, signalled.
local T = require("testlib")

local _M = {}

-- Starts examples/<script> with env (shell assignments or commands put in
-- front of it) in the background; returns its job and pid file.
local started = 0
function _M.start(script, env)
  started = started + 1
  local pidfile = string.format("%s/%s.%d.pid", T.tmpdir(), script:gsub("%W", "_"), started)
  local cmd = string.format("%s exec %s %s/examples/%s & echo $! > %s; wait $!",
                            env, T.luajit, T.q(T.source_dir), script, T.q(pidfile))
  return T.spawn(cmd), pidfile
end

-- Waits until url answers (curl exit 0, extra curl arguments in curl_args);
-- fails after about 5 s.
function _M.wait_until_serving(url, curl_args)
  for _ = 1, 100 do
    local _, rc = T.run_client(nil, "curl -s -o /dev/null --max-time 1 " .. (curl_args or "") .. T.q(url))
    if rc == 0 then
      return true
    end
    os.execute("sleep 0.05")
  end
  error("server did not start: " .. url)
end

-- Waits until a started example printed a line matching pattern; fails
-- when it exits first or after about 5 s.
function _M.wait_for_line(job, pattern)
  for _ = 1, 200 do
    local out = T.read_file(job.base .. ".out") or ""
    if out:find(pattern) then
      return out
    end
    if T.read_file(job.base .. ".rc") then
      error("example exited early: " .. (T.read_file(job.base .. ".err") or ""))
    end
    os.execute("sleep 0.025")
  end
  error("no line matching " .. pattern)
end

-- Sends signal (TERM, INT, KILL) to the example whose pid is in pidfile.
function _M.stop(pidfile, signal)
  local pid = assert(T.read_file(pidfile), "no pid file"):match("%d+")
  os.execute("kill -" .. signal .. " " .. pid)
end

-- Starts examples/<script> with PORT=<a free port> and env (more
-- assignments, optional) and waits until it serves http://127.0.0.1:port/;
-- returns its job, pid file, port and base URL.
function _M.serve(script, env)
  local port = T.free_port()
  local job, pidfile = _M.start(script, "PORT=" .. port .. (env and " " .. env or ""))
  local base = "http://127.0.0.1:" .. port
  _M.wait_until_serving(base .. "/")
  return job, pidfile, port, base
end

-- Sends signal to the example, waits for it, checks that it exited 0 and
-- that its stdout matches each of the patterns; returns stdout, stderr.
function _M.stopped_ok(job, pidfile, signal, ...)
  _M.stop(pidfile, signal)
  local out, exit_code, err = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIG" .. signal .. (err ~= "" and "; stderr: " .. err or ""))
  for i = 1, select("#", ...) do
    T.match(out, (select(i, ...)))
  end
  return out, err
end

-- Sends SIGTERM (if the example is still there) and waits for it; returns
-- its stdout, exit code, stderr.
function _M.stop_and_wait(job, pidfile)
  local pid = (T.read_file(pidfile) or ""):match("%d+")
  if pid then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  end
  return T.wait(job, nil, 10000)
end

return _M
