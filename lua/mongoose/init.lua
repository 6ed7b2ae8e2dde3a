-- mongoose: the high-level API of mongoose-ffi.
--
--   local mongoose = require("mongoose")
--   local mgr = mongoose.new_manager()
--   mgr:http_listen("http://127.0.0.1:8000", function(req, res)
--     return 200, "hello\n", { ["Content-Type"] = "text/plain" }
--   end)
--   mgr:run({ signals = { "INT", "TERM" } })
local core = require("mongoose.core")
local manager = require("mongoose.manager")
local http = require("mongoose.http")
local http_client = require("mongoose.http_client")
local websocket = require("mongoose.websocket")
local websocket_server = require("mongoose.websocket_server")
local net = require("mongoose.net")

local Manager = manager.Manager

local _M = {
  _VERSION = "0.1.0",
  mongoose_version = core.mongoose_version,
  core = core,
}

--- Creates an event manager (see mongoose.manager for opts).
function _M.new_manager(opts)
  return manager.new(opts)
end

--- Opens an HTTP server: handler(req, res) for every request.
function Manager:http_listen(url, handler, opts)
  self:check_open(2)
  local a, b = http.listen(self, url, handler, opts)
  return a, b
end

--- Starts an HTTP request; callback(response, err) runs from a later poll.
function Manager:http_request(url, opts, callback)
  self:check_open(2)
  local a, b = http_client.request(self, url, opts, callback)
  return a, b
end

--- Performs an HTTP request and waits for the response while polling.
function Manager:fetch(url, opts)
  self:check_open(2)
  local a, b = http_client.fetch(self, url, opts)
  return a, b
end

--- Opens a WebSocket server (see mongoose.websocket_server.listen for opts).
function Manager:ws_listen(url, opts)
  self:check_open(2)
  local a, b = websocket_server.listen(self, url, opts)
  return a, b
end

--- Connects to a WebSocket server; returns the WebSocket or nil, err.
function Manager:ws_connect(url, opts)
  self:check_open(2)
  local a, b = websocket.connect(self, url, opts)
  return a, b
end

--- Sends to a WebSocket by connection id; nil, err if there is none.
function Manager:ws_send(id, data, kind)
  self:check_open(2)
  local a, b = websocket.send(self, id, data, kind)
  return a, b
end

--- Listens for TCP connections on tcp://HOST:PORT (see mongoose.net).
function Manager:tcp_listen(url, opts)
  self:check_open(2)
  local a, b = net.tcp_listen(self, url, opts)
  return a, b
end

--- Connects to tcp://HOST:PORT; returns the connection or nil, err.
function Manager:tcp_connect(url, opts)
  self:check_open(2)
  local a, b = net.tcp_connect(self, url, opts)
  return a, b
end

--- Listens for UDP datagrams on udp://HOST:PORT.
function Manager:udp_listen(url, opts)
  self:check_open(2)
  local a, b = net.udp_listen(self, url, opts)
  return a, b
end

--- A UDP socket sending to udp://HOST:PORT.
function Manager:udp_connect(url, opts)
  self:check_open(2)
  local a, b = net.udp_connect(self, url, opts)
  return a, b
end

--- Sets the open-file cache of the static file server (res:serve_dir,
-- res:serve_file): opts.max_entries, opts.valid_ms, opts.inactive_ms.
function Manager:set_file_cache(opts)
  self:check_open(2)
  local a, b = require("mongoose.response").set_file_cache(self, opts, 2)
  return a, b
end

--- Runs this manager inside a luv (libuv) loop: see mongoose.luv.
function Manager:attach_luv(uv, opts)
  self:check_open(2)
  local a, b = require("mongoose.luv").attach(self, uv, opts)
  return a, b
end

--- Stops running inside the luv loop and closes the luv handles.
function Manager:detach_luv()
  local a, b = require("mongoose.luv").detach(self)
  return a, b
end

--- Performs one HTTP request on a temporary manager.
function _M.fetch(url, opts)
  if type(url) ~= "string" then
    error("url must be a string", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("opts must be a table", 2)
  end
  local mgr = assert(manager.new())
  local ok, resp, err = pcall(http_client.fetch, mgr, url, opts, 0)
  mgr:close()
  if not ok then
    error(resp, 2)
  end
  return resp, err
end

--- Runs fn(...) in a task of this manager (it may wait: mongoose.sleep,
-- cosockets, fetch); returns the thread (see mongoose.thread).
function Manager:spawn(fn, ...)
  self:check_open(2)
  if type(fn) ~= "function" then
    error("fn must be a function", 2)
  end
  return require("mongoose.thread").spawn(self, fn, ...)
end

--- Waits ms milliseconds: in a task it yields to the manager, in the main
-- program it polls the manager (mgr, default the most recent) meanwhile.
_M.sleep = require("mongoose.coro").sleep
--- Cosockets: mongoose.socket.tcp() and .udp() (OpenResty's API).
_M.socket = require("mongoose.socket")
_M.thread = require("mongoose.thread")

_M.address = net.address
_M.tls = require("mongoose.tls")
_M.url_decode = http.url_decode
_M.parse_query = http.parse_query

return _M
