-- The server of bench/web.sh. MODE picks what it measures:
--   raw     a plain http_listen handler (the baseline)
--   routes  a mongoose.web app with 50 parameterised routes; the request
--           matches one in the middle ("/r37/:id/items/:item")
--   plain   an app answering a 10 KiB text body as it is
--   gzip    the same app with mongoose.web.compress (gzip, level 6)
--
--   scripts/lua-env.sh luajit bench/web_server.lua MODE [port]
--
-- Listens on 127.0.0.1 only (default port 8131); stops on SIGINT or SIGTERM.
local mongoose = require("mongoose")
local web = require("mongoose.web")

local mode = arg and arg[1] or "raw"
local port = tonumber(arg and arg[2]) or 8131
local url = "http://127.0.0.1:" .. port
local mgr = assert(mongoose.new_manager())
local TEXT = { ["Content-Type"] = "text/plain" }

local body = {}
for i = 1, 200 do
  body[i] = string.format("line %03d: the quick brown fox jumps over the lazy dog\n", i)
end
body = table.concat(body):sub(1, 10240)

if mode == "raw" then
  assert(mgr:http_listen(url, function(req)
    if req.method == "GET" and req.path:sub(1, 5) == "/r37/" then
      return 200, "hello, world\n", TEXT
    end
    return 404, "not found\n", TEXT
  end))
elseif mode == "routes" then
  local app = web.new()
  for i = 1, 50 do
    app:get("/r" .. i .. "/:id/items/:item", function()
      return 200, "hello, world\n", TEXT
    end)
  end
  assert(app:listen(mgr, url))
elseif mode == "plain" or mode == "gzip" then
  local app = web.new()
  if mode == "gzip" then
    app:use(web.compress.new({ level = 6 }))
  end
  app:get("/text", function() return 200, body, TEXT end)
  assert(app:listen(mgr, url))
else
  io.stderr:write("unknown mode ", mode, "\n")
  os.exit(2)
end
mgr:run({ signals = { "INT", "TERM" } })
