-- The demo server: an HTML page at / with a small chat, a JSON endpoint at
-- /api/status and a WebSocket chat at /ws (each message is echoed to its
-- sender as "you: ..." and sent to everyone else as "peer: ...").
--
--   PORT=8000 HOST=127.0.0.1 luajit examples/demo_server.lua
--
-- /?autosend=text makes the page send "text" once its WebSocket is open
-- (used by the browser test).
--
-- With TLS_CERT and TLS_KEY (PEM files) set it serves https:// (and the chat
-- wss://) instead; with only one of them set it exits with status 2:
--   TLS_CERT=server.pem TLS_KEY=server.key luajit examples/demo_server.lua
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
 #messages { list-style: none; padding: .5em; min-height: 6em; background: #f6f6f6; }
 #messages li.info { color: #777; font-style: italic; }
 #chat input { width: 30em; }
</style>
</head>
<body>
<h1>mongoose-ffi</h1>
<p>This page is served by a LuaJIT handler running on Mongoose %s.</p>
<p>Live status from <code>/api/status</code>:</p>
<div id="status">loading...</div>
<h2>Chat</h2>
<p>Messages go over a WebSocket to <code>/ws</code>; open this page twice to talk to yourself.</p>
<form id="chat">
<input id="input" autocomplete="off" placeholder="say something" maxlength="1000">
<button id="send" type="submit">Send</button>
</form>
<ul id="messages"></ul>
<script>
fetch('/api/status').then(r => r.json()).then(s => {
  document.getElementById('status').textContent = JSON.stringify(s, null, 2);
}).catch(e => {
  document.getElementById('status').textContent = 'error: ' + e;
});

const messages = document.getElementById('messages');
const input = document.getElementById('input');
function show(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  messages.appendChild(li);
}
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
ws.onopen = () => {
  show('connected', 'info');
  const auto = new URLSearchParams(location.search).get('autosend');
  if (auto) ws.send(auto);
};
ws.onmessage = e => show(e.data);
ws.onclose = e => show('disconnected (' + e.code + ')', 'info');
document.getElementById('chat').addEventListener('submit', e => {
  e.preventDefault();
  if (input.value && ws.readyState === WebSocket.OPEN) {
    ws.send(input.value);
    input.value = '';
  }
});
</script>
</body>
</html>
]]

local mgr = assert(mongoose.new_manager({ log_level = "info" }))
local started = mongoose.core.millis()
local requests = 0
local chat_clients = 0

-- The chat: every text message goes back to its sender as "you: ..." and
-- to the other chat connections of the listener as "peer: ...".
local CHAT = {
  max_message = 4096,
  on_open = function(ws)
    ws.state.counted = true
    chat_clients = chat_clients + 1
  end,
  on_message = function(ws, data, is_binary)
    if is_binary then
      ws:close(1003, "text only")
      return
    end
    ws:send("you: " .. data)
    ws.listener:broadcast("peer: " .. data, "text", ws)
  end,
  on_close = function(ws)
    if ws.state.counted then
      chat_clients = chat_clients - 1
    end
  end,
}

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- HTTPS (and WSS) when a certificate and key are given; one without the
-- other is a mistake, not a reason to serve plain HTTP. (Set but empty
-- counts as not set.)
local function env(name)
  local v = os.getenv(name)
  if v == "" then
    return nil
  end
  return v
end
local scheme, listen_opts = "http", nil
local tls_cert, tls_key = env("TLS_CERT"), env("TLS_KEY")
if tls_cert and tls_key then
  scheme, listen_opts = "https", { tls = { cert = tls_cert, key = tls_key } }
elseif tls_cert or tls_key then
  io.stderr:write("demo: ", tls_cert and "TLS_CERT" or "TLS_KEY", " is set but ",
                  tls_cert and "TLS_KEY" or "TLS_CERT", " is not: set both to serve https, or neither\n")
  os.exit(2)
end

local listener, err = mgr:http_listen(string.format("%s://%s:%d", scheme, host, port), function(req, res)
  requests = requests + 1
  if req.path == "/" then
    return 200, PAGE:format(mongoose.mongoose_version), { ["Content-Type"] = "text/html; charset=utf-8" }
  elseif req.path == "/ws" then
    local ws, upgrade_err = res:upgrade(CHAT)
    if not ws then
      mgr:log("info", "demo: /ws: " .. upgrade_err)
    end
    return
  elseif req.path == "/api/status" then
    local body = string.format(
      '{"server":"mongoose-ffi","version":%s,"mongoose":%s,"uptime_ms":%d,"requests":%d,'
        .. '"connections":%d,"chat_clients":%d,"client":%s}',
      json_string(mongoose._VERSION), json_string(mongoose.mongoose_version),
      mongoose.core.millis() - started, requests, mgr:connection_count(), chat_clients,
      json_string(req:remote_addr()))
    return 200, body, { ["Content-Type"] = "application/json" }
  end
  return 404, "not found\n", { ["Content-Type"] = "text/plain" }
end, listen_opts)
if not listener then
  io.stderr:write("demo: ", err, "\n")
  os.exit(1)
end

print(string.format("demo: serving on %s://%s (Ctrl-C to stop)", scheme, (listener:local_addr())))
io.stdout:flush()
mgr:run({ signals = { "INT", "TERM" } })
print("demo: stopped")
