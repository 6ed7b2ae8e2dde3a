-- Real services for the cosocket and OpenResty library tests: a
-- redis-server and a memcached started on a free loopback port (and
-- stopped, by their pid, when the test file ends), and Debian's OpenResty
-- libraries (lua-nginx-redis, -memcached, -dns, -websocket) unpacked by
-- scripts/setup-deps.sh --with-test-tools under the build folder.
local T = require("testlib")

local _M = {}

--- Puts the unpacked OpenResty libraries on package.path (they load as
-- require("nginx.redis"), ...), or skips the test file without them.
function _M.need_openresty_libs()
  local dir = T.build_dir .. "/openresty-libs/usr/share/lua/5.1"
  if not T.read_file(dir .. "/nginx/redis.lua") then
    T.skip("Debian's lua-nginx-* libraries are not unpacked in " .. dir
           .. " (bash scripts/setup-deps.sh --with-test-tools)")
  end
  package.path = dir .. "/?.lua;" .. package.path
  return dir
end

local function need(cmd, package)
  if not T.have_command(cmd) then
    T.skip(cmd .. " is not installed (apt-get install " .. package .. ")")
  end
end

-- Waits until something accepts TCP connections on port (python probe).
local function wait_port(port, what)
  local out, rc = T.run_client(nil, T.python .. [[ -c "
import socket, time, sys
for i in range(200):
    try:
        socket.create_connection(('127.0.0.1', ]] .. port .. [[), 0.2).close()
        print('up'); sys.exit(0)
    except OSError:
        time.sleep(0.025)
sys.exit(1)"]], 10000)
  if rc ~= 0 or not out:find("up") then
    error(what .. " did not start on port " .. port)
  end
end

--- For a client library (nginx.redis, nginx.memcached) of a service on
-- 127.0.0.1:port, returns connect() (a new client, a 2 s timeout,
-- connected) and test(name, fn): a T.test that runs fn(client) in a task
-- of mgr with a new connected client, and closes that client after it.
function _M.client(mgr, lib, port)
  local function connect()
    local c = assert(lib:new())
    c:set_timeout(2000)
    assert(c:connect("127.0.0.1", port))
    return c
  end
  local function test(name, fn)
    T.test(name, function()
      T.in_task(mgr, function()
        local c = connect()
        fn(c)
        c:close()
      end)
    end)
  end
  return connect, test
end

--- Starts redis-server on 127.0.0.1 (no persistence); returns its port.
function _M.redis()
  need("redis-server", "redis-server")
  local port = T.free_port()
  local dir = T.tmpdir()
  local pidfile = dir .. "/redis-" .. port .. ".pid"
  T.on_exit(T.killer(pidfile))
  local _, rc, err = T.run_client(nil, "redis-server --port " .. port .. " --bind 127.0.0.1"
    .. " --save '' --appendonly no --daemonize yes --dir " .. T.q(dir) .. " --pidfile " .. T.q(pidfile)
    .. " --logfile " .. T.q(dir .. "/redis-" .. port .. ".log"), 10000)
  if rc ~= 0 then
    error("redis-server failed: " .. err)
  end
  wait_port(port, "redis-server")
  return port
end

--- Starts memcached on 127.0.0.1 (TCP only); returns its port.
function _M.memcached()
  need("memcached", "memcached")
  local port = T.free_port()
  local pidfile = T.tmpdir() .. "/memcached-" .. port .. ".pid"
  T.on_exit(T.killer(pidfile))
  local _, rc, err = T.run_client(nil, "memcached -l 127.0.0.1 -p " .. port .. " -U 0 -m 16 -d -u root -P "
    .. T.q(pidfile), 10000)
  if rc ~= 0 then
    error("memcached failed: " .. err)
  end
  wait_port(port, "memcached")
  return port
end

return _M
