-- The demo server without PORT listens on 127.0.0.1:8000, and only there.
-- Skipped when something else holds that address.
local T = require("testlib")
local E = require("testexamples")
local start_example, stop = E.start, E.stop

-- Bound the way Mongoose binds (SO_REUSEADDR): fails only for a listener.
local probe = T.run_client(nil, T.python .. [[ -c "
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', 8000)); print('free')
except OSError as e:
    print('busy:', e.strerror)"]])
if not probe:find("^free") then
  T.skip("the demo's default address 127.0.0.1:8000 is " .. probe:gsub("%s+$", ""))
end

T.test("demo server without PORT listens on 127.0.0.1:8000", function()
  local job, pidfile = start_example("demo_server.lua", "unset PORT HOST TLS_CERT TLS_KEY;")
  local ok, err = pcall(function()
    local out = ""
    for _ = 1, 400 do
      out = T.read_file(job.base .. ".out") or ""
      if out:find("demo: serving on") or T.read_file(job.base .. ".rc") then break end
      os.execute("sleep 0.025")
    end
    if T.read_file(job.base .. ".rc") then
      local _, rc, stderr = T.wait(job, nil, 1000)
      if rc == 1 and stderr:find("Address already in use", 1, true) then
        T.skip("the demo's default address 127.0.0.1:8000 was taken meanwhile")
      end
      error("the demo exited with " .. tostring(rc) .. ": " .. stderr)
    end
    T.match(out, "demo: serving on http://127%.0%.0%.1:8000 ", "the default address")
    local body, rc = T.run_client(nil, "curl -s --max-time 5 http://127.0.0.1:8000/api/status")
    T.eq(rc, 0, "curl exit")
    T.match(body, '"server":"mongoose%-ffi"')
    -- Bound to 127.0.0.1, not to every address: 127.0.0.2 (loopback too) is refused.
    local _, other_rc = T.run_client(nil, "curl -s -o /dev/null --max-time 2 http://127.0.0.2:8000/")
    T.ok(other_rc ~= 0, "nothing on 127.0.0.2:8000")
    E.stopped_ok(job, pidfile, "TERM", "demo: stopped")
  end)
  if not T.read_file(job.base .. ".rc") then -- a failed check: stop the demo anyway
    stop(pidfile, "KILL")
    T.wait(job, nil, 10000)
  end
  assert(ok, err)
end)

T.run()
