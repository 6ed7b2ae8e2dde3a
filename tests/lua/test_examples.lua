-- Runs the programs in examples/ as a user would and talks to them with
-- curl: the demo server's page and JSON endpoint, PORT handling, and a
-- clean stop on SIGTERM and SIGINT.
local T = require("testlib")

local root = T.source_dir
local luajit = os.getenv("LUAJIT") or "luajit"

local function free_port()
  local out = T.run_client(nil, T.python .. [[ -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]])
  return assert(tonumber(out), "no free port")
end

-- Starts an example in the background; returns its job and pid file.
local started = 0
local function start_example(script, env)
  started = started + 1
  local pidfile = string.format("%s/%s.%d.pid", T.tmpdir(), script:gsub("%W", "_"), started)
  local cmd = string.format("%s exec %s %s/examples/%s & echo $! > %s; wait $!",
                            env, luajit, T.q(root), script, T.q(pidfile))
  local job = T.spawn(cmd)
  return job, pidfile
end

local function wait_until_serving(url)
  for _ = 1, 100 do
    local _, rc = T.run_client(nil, "curl -s -o /dev/null --max-time 1 " .. T.q(url))
    if rc == 0 then
      return true
    end
    os.execute("sleep 0.05")
  end
  error("server did not start: " .. url)
end

local function stop(pidfile, signal)
  local pid = assert(T.read_file(pidfile), "no pid file"):match("%d+")
  os.execute("kill -" .. signal .. " " .. pid)
end

T.test("demo server serves its page and JSON, stops on SIGTERM", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  local base = "http://127.0.0.1:" .. port
  wait_until_serving(base .. "/")

  local page, rc = T.run_client(nil, "curl -s -i " .. base .. "/")
  T.eq(rc, 0, "curl exit")
  T.match(page, "^HTTP/1.1 200")
  T.match(page, "Content%-Type: text/html")
  T.match(page, "<h1>mongoose%-ffi</h1>")
  T.match(page, "/api/status")

  local json = T.run_client(nil, "curl -s -i " .. base .. "/api/status")
  T.match(json, "^HTTP/1.1 200")
  T.match(json, "Content%-Type: application/json")
  T.match(json, '"server":"mongoose%-ffi"')
  T.match(json, '"mongoose":"7%.%d+"')
  T.match(json, '"requests":%d+')

  -- The JSON parses with a real parser.
  local parsed = T.run_client(nil, "curl -s " .. base .. "/api/status | " .. T.python
                             .. [[ -c "import json,sys; d=json.load(sys.stdin); print(d['server'], d['client'].startswith('127.0.0.1:'))"]])
  T.eq(parsed, "mongoose-ffi True\n", "json parsed by python")

  local missing = T.run_client(nil, "curl -s -o /dev/null -w '%{http_code}' " .. base .. "/nope")
  T.eq(missing, "404", "unknown path")

  stop(pidfile, "TERM")
  local out, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGTERM")
  T.match(out, "demo: serving on http://127%.0%.0%.1:" .. port)
  T.match(out, "demo: stopped")
end)

T.test("demo server stops on SIGINT", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  wait_until_serving("http://127.0.0.1:" .. port .. "/")
  stop(pidfile, "INT")
  local out, exit_code = T.wait(job, nil, 10000)
  T.eq(exit_code, 0, "exit code after SIGINT")
  T.match(out, "demo: stopped")
end)

T.test("demo server reports a port in use", function()
  local port = free_port()
  local job, pidfile = start_example("demo_server.lua", "PORT=" .. port)
  wait_until_serving("http://127.0.0.1:" .. port .. "/")
  local second = start_example("demo_server.lua", "PORT=" .. port)
  local _, rc, err = T.wait(second, nil, 10000)
  T.eq(rc, 1, "second server exit code")
  T.match(err, "Address already in use")
  stop(pidfile, "TERM")
  T.wait(job, nil, 10000)
end)

T.run()
