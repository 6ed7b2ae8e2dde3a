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

-- The protocol methods of managers: each checks that the manager is open,
-- then calls its module (not as a tail call, so that the module's argument
-- errors point at the caller's line).
local function protocol_method(fn)
  return function(self, a1, a2, a3)
    self:check_open(2)
    local r1, r2 = fn(self, a1, a2, a3)
    return r1, r2
  end
end

--- mgr:http_listen(url, handler, opts): an HTTP server, handler(req, res)
-- for every request (mongoose.http).
Manager.http_listen = protocol_method(http.listen)
--- mgr:http_request(url, opts, callback): an HTTP request, callback(response,
-- err) from a later poll; returns a handle with cancel() (mongoose.http_client).
Manager.http_request = protocol_method(http_client.request)
--- mgr:fetch(url, opts): an HTTP request whose response it waits for.
Manager.fetch = protocol_method(http_client.fetch)
--- mgr:ws_listen(url, opts): a WebSocket server (mongoose.websocket_server).
Manager.ws_listen = protocol_method(websocket_server.listen)
--- mgr:ws_connect(url, opts): a WebSocket client, or nil, err.
Manager.ws_connect = protocol_method(websocket.connect)
--- mgr:ws_send(id, data, kind): sends to a WebSocket by connection id.
Manager.ws_send = protocol_method(websocket.send)
--- mgr:tcp_listen(url, opts), mgr:tcp_connect(url, opts), mgr:udp_listen(url,
-- opts), mgr:udp_connect(url, opts): raw sockets (mongoose.net).
Manager.tcp_listen = protocol_method(net.tcp_listen)
Manager.tcp_connect = protocol_method(net.tcp_connect)
Manager.udp_listen = protocol_method(net.udp_listen)
Manager.udp_connect = protocol_method(net.udp_connect)

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
  core.opt_table(opts, 2)
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
