-- The demo server: an HTML page at / and a JSON endpoint at /api/status.
--
--   PORT=8000 HOST=127.0.0.1 luajit examples/demo_server.lua
--
-- Stops cleanly on SIGINT (Ctrl-C) or SIGTERM.
local mongoose = require("mongoose")

local host = os.getenv("HOST") or "127.0.0.1"
local port = tonumber(os.getenv("PORT") or "8000")
if not port then
  io.stderr:write("PORT must be a number\n")
  os.exit(2)
end

local PAGE = [[
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mongoose-ffi demo</title>
<style>
 body { font-family: sans-serif; max-width: 40em; margin: 2em auto; color: #222; }
 code { background: #eee; padding: 0 .3em; }
 #status { white-space: pre; background: #f6f6f6; padding: 1em; }
</style>
</head>
<body>
<h1>mongoose-ffi</h1>
<p>This page is served by a LuaJIT handler running on Mongoose %s.</p>
<p>Live status from <code>/api/status</code>:</p>
<div id="status">loading...</div>
<script>
fetch('/api/status').then(r => r.json()).then(s => {
  document.getElementById('status').textContent = JSON.stringify(s, null, 2);
}).catch(e => {
  document.getElementById('status').textContent = 'error: ' + e;
});
</script>
</body>
</html>
]]

local mgr = assert(mongoose.new_manager({ log_level = "info" }))
local started = mongoose.core.millis()
local requests = 0

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local listener, err = mgr:http_listen(string.format("http://%s:%d", host, port), function(req, res)
  requests = requests + 1
  if req.path == "/" then
    return 200, PAGE:format(mongoose.mongoose_version), { ["Content-Type"] = "text/html; charset=utf-8" }
  elseif req.path == "/api/status" then
    local body = string.format(
      '{"server":"mongoose-ffi","version":%s,"mongoose":%s,"uptime_ms":%d,"requests":%d,'
        .. '"connections":%d,"client":%s}',
      json_string(mongoose._VERSION), json_string(mongoose.mongoose_version),
      mongoose.core.millis() - started, requests, mgr:connection_count(),
      json_string(req:remote_addr()))
    return 200, body, { ["Content-Type"] = "application/json" }
  end
  return 404, "not found\n", { ["Content-Type"] = "text/plain" }
end)
if not listener then
  io.stderr:write("demo: ", err, "\n")
  os.exit(1)
end

print(string.format("demo: serving on http://%s (Ctrl-C to stop)", (listener:local_addr())))
io.stdout:flush()
mgr:run({ signals = { "INT", "TERM" } })
print("demo: stopped")
