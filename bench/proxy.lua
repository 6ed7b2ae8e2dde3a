-- proxy: the mongoose side of bench/proxy.sh. Every request is fetched
-- from a local upstream (mgr:fetch in the handler's task, on the HTTP
-- client's keep-alive pool) and its status, body and Content-Type sent
-- back, as nginx's proxy_pass with keepalive does.
--
--   scripts/lua-env.sh luajit bench/proxy.lua PORT UPSTREAM_PORT
--
-- Listens on 127.0.0.1 only; stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")

local port = tonumber(arg and arg[1]) or 8303
local upstream = "http://127.0.0.1:" .. (tonumber(arg and arg[2]) or 8310)
local OPTS = { keepalive_pool = 100 }

local mgr = assert(mongoose.new_manager())
assert(mgr:http_listen("http://127.0.0.1:" .. port, function(req, res)
  local target = req.query ~= "" and (req.path .. "?" .. req.query) or req.path
  local resp, err = mgr:fetch(upstream .. target, OPTS)
  if not resp then
    return 502, "upstream: " .. err .. "\n"
  end
  return resp.status, resp.body, { ["Content-Type"] = resp.headers["content-type"] }
end))
mgr:run({ signals = { "INT", "TERM" } })
