-- The HTTP server the HTTP tests share: one manager in the test process
-- (its log messages collected), one listener on 127.0.0.1 whose handler
-- picks a route by path, and runners for real clients (curl, python3) that
-- work in the background while the manager keeps polling.
local T = require("testlib")
local P = require("testpy")

local _M = {}

-- Returns the fixture H: H.mgr, H.logs, H.routes (path -> handler(req,
-- res); "/hello" answers "hello\n"), H.hits (path -> requests seen),
-- H.handler (the routing handler, for more listeners), H.listener, H.PORT,
-- H.BASE, and H.curl(args), H.sh(script), H.py(code, port) (stdout, exit
-- status, stderr), H.pyc(code, port) (stdout; fails on a non-zero exit),
-- H.raw(request, port) (a raw request's whole reply) and H.find_log(text,
-- level). opts.log_level defaults to "info".
function _M.server(opts)
  opts = opts or {}
  local mgr, logs = T.logging_manager({ log_level = opts.log_level or "info" })
  local H = { mgr = mgr, logs = logs, routes = {}, hits = {} }
  function H.handler(req, res)
    H.hits[req.path] = (H.hits[req.path] or 0) + 1
    local fn = H.routes[req.path]
    if fn then
      return fn(req, res)
    end
    return 404, "no route for " .. req.path .. "\n", { ["Content-Type"] = "text/plain" }
  end
  H.listener = assert(mgr:http_listen("http://127.0.0.1:0", H.handler))
  H.PORT = H.listener:port()
  H.BASE = "http://127.0.0.1:" .. H.PORT
  H.routes["/hello"] = function()
    return 200, "hello\n", { ["Content-Type"] = "text/plain" }
  end

  function H.sh(script, timeout_ms)
    return T.sh(mgr, script, timeout_ms)
  end
  function H.curl(args, timeout_ms)
    return T.curl(mgr, args, timeout_ms)
  end
  -- Python code after testpy's HTTP prelude, with the port (and more
  -- arguments, already quoted) as argv.
  function H.py(code, port, timeout_ms)
    return P.run(mgr, P.HTTP .. code, port, timeout_ms)
  end
  function H.pyc(code, port, timeout_ms)
    return P.check(mgr, P.HTTP .. code, port, timeout_ms)
  end
  -- The whole reply (as text) to request, Python bytes (an expression,
  -- optionally followed by raw()'s keyword arguments), sent on a fresh
  -- connection to port (H.PORT by default) and read until it closes;
  -- checks that python exited 0 (what names that check).
  function H.raw(request, port, what)
    local out, rc = H.py("data = raw(" .. request .. ")\nsys.stdout.write(data.decode(\"latin-1\"))\n",
                         port or H.PORT)
    T.eq(rc, 0, what or "python exit status")
    return out
  end
  function H.find_log(text, level)
    return T.find_log(logs, text, level)
  end
  -- A WebSocket listener on /ws that echoes and refuses messages over
  -- max_message; other paths go to H.handler.
  function H.ws_echo(max_message)
    return assert(mgr:ws_listen("http://127.0.0.1:0", {
      path = "/ws",
      max_message = max_message,
      on_message = function(ws, data)
        ws:send(data)
      end,
      http = H.handler,
    }))
  end
  return H
end

-- Starts app (mongoose.web) on mgr at 127.0.0.1:0 with listen options
-- opts; returns the listener, its base URL and get(path, args): curl -i
-- of base .. path (args: more curl arguments), its exit status checked,
-- parsed (T.parse_response).
function _M.web_app(mgr, app, opts)
  local listener = assert(app:listen(mgr, "http://127.0.0.1:0", opts))
  local base = "http://127.0.0.1:" .. listener:port()
  local function get(path, args)
    local out, rc, err = T.curl(mgr, "-i " .. (args or "") .. " " .. T.q(base .. path))
    T.eq(rc, 0, "curl exit status (" .. err .. ")")
    return T.parse_response(out)
  end
  return listener, base, get
end

return _M
