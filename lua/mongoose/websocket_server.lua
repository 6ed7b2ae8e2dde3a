-- mongoose.websocket_server: the server side of WebSockets: ws_listen (a
-- whole WebSocket server), res:upgrade (one request of an HTTP handler)
-- and listener:broadcast. The WebSocket object and its options are
-- mongoose.websocket's.
local ffi = require("ffi")
local core = require("mongoose.core")
local headers = require("mongoose.headers")
local response = require("mongoose.response")
local websocket = require("mongoose.websocket")

ffi.cdef [[
int mgffi_ws_upgrade(mgffi_manager *m, uint64_t id, const char *extra_headers, size_t extra_len);
int mgffi_ws_request_head(mgffi_manager *m, uint64_t id, mgffi_str *head);
int mgffi_http_parse_head(const char *p, size_t len, mgffi_http_message *out);
]]

local C, ERR, ffi_string = core.C, core.ERR, ffi.string
local type, error, ipairs, next, setmetatable = type, error, ipairs, next, setmetatable
local C_ws_send = C.mgffi_ws_send
local check_options, apply_deflate = websocket.check_options, websocket.apply_deflate
local new_ws, opcode, OPEN, LISTENER = websocket.new_ws, websocket.opcode, websocket.OPEN, websocket.LISTENER
local getmetatable = getmetatable

local _M = {}

-- ws.request: a copy of the upgrade request, made when first read
-- (websocket.LAZY) from the head the C layer keeps for the connection
-- (mgffi_ws_request_head; after the close, from the CLOSE event) and the
-- peer's address; its method, path, query and headers are made from the
-- head when first read in turn. An idle WebSocket that was never asked
-- holds no string and no table but itself: each object less per idle
-- connection is less for every garbage collection to visit.
local RequestCopy = {}
local head_view = ffi.new("mgffi_http_message")
local rawget, rawset = rawget, rawset

function RequestCopy.__index(t, k)
  local head = rawget(t, "_head")
  if head == nil then
    return nil -- already split
  end
  rawset(t, "_head", nil)
  local h = head_view
  if C.mgffi_http_parse_head(head, #head, h) > 0 then
    rawset(t, "method", ffi_string(h.method.ptr, h.method.len))
    rawset(t, "path", ffi_string(h.uri.ptr, h.uri.len))
    rawset(t, "query", h.query.len > 0 and ffi_string(h.query.ptr, h.query.len) or "")
    rawset(t, "headers", headers.of_message(h))
  end
  return rawget(t, k)
end

local head_str = ffi.new("mgffi_str")

function websocket.LAZY.request(ws)
  if ws.is_client then
    return nil
  end
  local head, addr, ip, port = rawget(ws, "_head"), rawget(ws, "_addr"), rawget(ws, "_ip"),
                               rawget(ws, "_port")
  if head then -- kept from the CLOSE event
    ws._head, ws._addr, ws._ip, ws._port = nil, nil, nil, nil
  else
    local cm = ws.mgr.cm
    if cm == nil or C.mgffi_ws_request_head(cm, ws.id, head_str) ~= 0 then
      return nil
    end
    head = ffi_string(head_str.ptr, head_str.len)
    local info = core.conn_info(cm, ws.id)
    if info then
      addr, ip, port = core.peer_strings(info.remote)
    end
  end
  return setmetatable({ _head = head, remote_addr = addr, remote_ip = ip, remote_port = port },
                      RequestCopy)
end

--- Upgrades the request of res to a WebSocket (Response:upgrade). opts:
-- protocol (the chosen subprotocol, one the client offered), headers (extra
-- response headers), the limits of core.LIMIT_SETS.websocket (max_message,
-- ws_idle_timeout, ...), on_open/on_message/on_close/on_control/on_error.
-- Returns the WebSocket, or nil and an error (the client then gets 426, or
-- 400 for a broken handshake). level: where argument errors point.
function _M.upgrade(res, opts, level)
  level = level or 2
  opts = core.opt_table(opts, level)
  check_options(opts, level)
  local req = res.req
  if not req:is_websocket() then
    res:send(426, "WebSocket upgrade expected\n", { Upgrade = "websocket" })
    return nil, "not a WebSocket handshake request"
  end
  local extra = core.copy_table(opts.headers) -- the caller's table may be shared
  if opts.protocol ~= nil then
    if type(opts.protocol) ~= "string" then
      error("protocol must be a string", level)
    end
    local offered = false
    for _, p in ipairs(req:websocket_protocols()) do
      offered = offered or p == opts.protocol
    end
    if not offered then
      error("protocol '" .. opts.protocol .. "' was not offered by the client", level)
    end
    extra["Sec-WebSocket-Protocol"] = opts.protocol
  end
  local block = headers.build(extra, res.default_headers, level + 1)
  local ws = new_ws(res.mgr, res.id, opts)
  if opts.protocol ~= nil then
    ws.protocol = opts.protocol
  end
  ws.listener = res.listener
  local mgr = res.mgr
  local ok, err = core.apply_limits(mgr.cm, res.id, opts, "websocket")
  if ok then
    ok, err = apply_deflate(mgr.cm, res.id, opts.deflate)
  end
  if not ok then
    response.finish(res)
    return nil, err
  end
  mgr:own(res.id, ws)
  local rc = C.mgffi_ws_upgrade(mgr.cm, res.id, block, #block)
  if rc == 0 then
    res.status, res.bytes = 101, 0 -- for the listener's on_response
  end
  response.finish(res)
  if rc ~= 0 then
    mgr:disown(res.id)
    return nil, mgr:last_error()
  end
  return ws
end

-- Whether owner (a value of mgr.owners) is, or stands for, an open
-- WebSocket of listener l. A listener keeps no list of its own: one index
-- entry less per idle WebSocket for every garbage collection to visit;
-- broadcast walks the manager's owners instead.
local WebSocket, Sleeper = websocket.WebSocket, websocket.Sleeper
local function open_ws_of(l, owner)
  local mt = getmetatable(owner)
  if mt == Sleeper then
    return owner.listener == l -- asleep: open, and neither closing nor streaming
  end
  return mt == WebSocket and rawget(owner, LISTENER) == l and owner[OPEN] and not owner.closed
end
_M.open_ws_of = open_ws_of

--- Sends data to every open WebSocket of listener l (but except). A slow
-- consumer, whose send queue is at max_send_queue, is skipped
-- (opts.slow = "skip", the default) or closed with 1008 ("close").
-- Returns the number of connections it was queued for, and the number of
-- slow ones skipped or closed.
function _M.broadcast(l, data, kind, except, opts, level)
  level = level or 2
  if type(data) ~= "string" then
    error("data must be a string", level)
  end
  local op = opcode(kind, level)
  local slow = opts and opts.slow or "skip"
  if slow ~= "skip" and slow ~= "close" then
    error("opts.slow must be \"skip\" or \"close\"", level)
  end
  local n, slow_count = 0, 0
  local mgr = l.mgr
  local cm, all, awake = mgr.cm, mgr.owners, mgr.ws_awake
  -- next(), not pairs(): see core.copy_table (a LuaJIT bug).
  local id, owner = next(all)
  while id ~= nil do
    local asleep = getmetatable(owner) == Sleeper
    -- A sleeping WebSocket is except only if except is the object it has.
    local is_except = except ~= nil and (asleep and awake[id] or owner) == except
    if not is_except and open_ws_of(l, owner) and (asleep or not owner.closing) then
      local rc = C_ws_send(cm, id, data, #data, op)
      if rc == 0 then
        n = n + 1
      elseif rc == ERR.FULL then
        slow_count = slow_count + 1
        if slow == "close" then
          websocket.object_of(owner, id):close(1008, "too slow")
        end
      elseif rc == ERR.STATE and not asleep and owner.streaming then
        slow_count = slow_count + 1 -- mid-message (ws:stream): skipped, never closed for it
      end
    end
    id, owner = next(all, id)
  end
  return n, slow_count
end

--- Opens a WebSocket server. opts: on_open(ws), on_message(ws, data,
-- is_binary), on_close(ws, code, reason), on_control(ws, kind, data),
-- path (only this path upgrades; others get 404 or opts.http, which also
-- answers requests that are not WebSocket handshakes), protocols
-- (supported subprotocols, the first one offered is chosen), accept(req)
-- (return false[, status, body] to refuse), the WebSocket limits, and the
-- HTTP listen options.
function _M.listen(mgr, url, opts, level)
  level = level or 3
  if type(opts) ~= "table" then
    error("opts must be a table", level)
  end
  check_options(opts, level)
  core.check_option(opts, "accept", "function", level)
  core.check_option(opts, "http", "function", level)
  local path, accept, fallback = opts.path, opts.accept, opts.http
  local supported = opts.protocols
  local handlers = {
    on_open = opts.on_open, on_message = opts.on_message, on_close = opts.on_close,
    on_control = opts.on_control, on_error = opts.on_error,
  }
  local handler = function(req, res)
    if (path and req.path ~= path) or (fallback and not req:is_websocket()) then
      if fallback then
        return fallback(req, res)
      end
      return 404, "not found\n"
    end
    if accept then
      local ok, status, body = accept(req)
      if not ok then
        return status or 403, body or "forbidden\n"
      end
    end
    local chosen
    if supported then
      local offered = req:websocket_protocols()
      for _, want in ipairs(supported) do
        for _, p in ipairs(offered) do
          if p == want and not chosen then
            chosen = p
          end
        end
      end
      if #offered > 0 and not chosen then
        return 400, "no supported WebSocket subprotocol\n"
      end
    end
    handlers.protocol = chosen
    _M.upgrade(res, handlers)
    handlers.protocol = nil
  end
  local listener, err = require("mongoose.http").listen(mgr, url, handler, opts, level + 1)
  if not listener then
    return nil, err
  end
  -- The WebSocket limits go on the listener: its connections inherit them.
  local ok
  ok, err = core.apply_limits(mgr.cm, listener.id, opts, "websocket")
  if ok then
    ok, err = apply_deflate(mgr.cm, listener.id, opts.deflate)
  end
  if not ok then
    listener:close()
    return nil, err
  end
  return listener
end

return _M
