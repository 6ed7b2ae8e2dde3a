-- mongoose.http: HTTP servers. A listener turns the C layer's request
-- events into calls of a Lua handler with a request (mongoose.request) and
-- a response (mongoose.response), answers 500 when a handler fails, and
-- feeds streamed bodies to the request's on_body callbacks.
local ffi = require("ffi")
local core = require("mongoose.core")
local request = require("mongoose.request")
local response = require("mongoose.response")
local headers = require("mongoose.headers")

local C, EV, F, ffi_string = core.C, core.EV, core.F, ffi.string
local band = require("bit").band
local type, pairs, tonumber, setmetatable = type, pairs, tonumber, setmetatable
local new_request, new_response, millis = request.new, response.new, core.millis
local coro = require("mongoose.coro")
local coro_run = coro.run

local EV_HTTP_MSG, EV_HTTP_HDRS, EV_HTTP_BODY = EV.HTTP_MSG, EV.HTTP_HDRS, EV.HTTP_BODY
local EV_HTTP_BODY_END, EV_HTTP_REJECTED, EV_CLOSE = EV.HTTP_BODY_END, EV.HTTP_REJECTED, EV.CLOSE
local EV_ERROR = EV.ERROR

local _M = {
  -- Kept here for the programs that used them from mongoose.http.
  url_decode = request.url_decode,
  parse_query = request.parse_query,
  header_block = function(h, defaults, level)
    return headers.build(h, defaults, (level or 2) + 1, false)
  end,
}

local Listener = core.class("mongoose.http.Listener")
_M.Listener = Listener

local TEXT_PLAIN = { ["Content-Type"] = "text/plain" }
local TEXT_PLAIN_CLOSE = { ["Content-Type"] = "text/plain", Connection = "close" }

-- Answers 500 in place of the reply res was meant for. Headers set with
-- set_header (CORS, cookies) are kept unless they are what made the reply
-- fail (a value that does not build).
local function send_500(res, hdrs)
  local set = res.default_headers
  if set ~= nil and not pcall(headers.build, nil, set, 1, true) then
    res.default_headers = nil
  end
  return res:send(500, "Internal Server Error\n", hdrs)
end

-- The body the glue sends with the rejections it answers itself (the
-- "<status> <reason>\n" of src/http_server.cpp; 503 has none).
local REJECTION_TEXT = {
  [400] = "Bad Request", [408] = "Request Timeout", [413] = "Payload Too Large",
  [417] = "Expectation Failed", [431] = "Request Header Fields Too Large",
  [505] = "HTTP Version Not Supported",
}

-- The on_response record of a request the glue rejected (there is no
-- request object): status, bytes, duration 0, rejected (the reason), the
-- peer's address, and res.req nil.
local function rejection_record(self, ev, id)
  local status = tonumber(ev.value)
  local text = REJECTION_TEXT[status]
  local pending = self.pending[id]
  return {
    id = id, status = status, rejected = ffi_string(ev.data.ptr, ev.data.len),
    bytes = text and #(status .. " " .. text .. "\n") or 0, duration = 0,
    remote = core.format_addr(ev.remote, true), listener = self,
    req = pending and pending.req or nil,
  }
end

local error_text = core.error_text

-- What bounds a handler that waits: at its listener's request_timeout it
-- is answered 504 (unless it answered) and its waits are cancelled. The
-- deadline is an entry of the scheduler's heap that belongs to the task
-- the handler runs in (task.handler_deadline, made once per task; tasks
-- are pooled): nothing is allocated per request.
local function handler_deadline(entry)
  local res = entry.res
  entry.res = nil
  local task = res and res.task
  if res == nil or res.sent or res.closed or task == nil then
    return -- it answered; what it still does is its own business
  end
  local req = res.req
  res.listener.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                       .. " did not answer within request_timeout (" .. res.listener.handler_timeout
                       .. " ms): answered 504, its waits are cancelled")
  if res.chunked then
    res:close()
  else
    res:send(504, "Gateway Timeout\n", TEXT_PLAIN)
  end
  coro.cancel(task)
end

-- The handler of the request being handled waits: the manager's
-- dispatcher task stays with it (see Manager:dispatch). The request is
-- bounded by request_timeout and cancelled when its client goes away;
-- returns it, for the error report of the handler after its waits.
function Listener:detach(task)
  local res = self.current
  self.current = nil
  if res == nil or res.sent or res.closed then
    return res
  end
  res.task = task
  local ms = self.handler_timeout
  if ms > 0 then
    local entry = task.handler_deadline
    if entry == nil then
      entry = { res = nil, due = 0, hseq = 0, hpos = nil, hheap = nil, want_due = nil,
                on_deadline = handler_deadline }
      task.handler_deadline = entry
    end
    entry.res = res
    self.mgr.sched:add(entry, coro.now_ms() + ms)
  end
  return res
end

-- The handler of res no longer waits (it returned, or its client went
-- away): its deadline goes.
local function attached(sched, res)
  local entry = res.task.handler_deadline
  res.task = nil
  if entry and entry.res == res then
    entry.res = nil
    sched:remove(entry)
  end
end

-- Handles the request: calls the handler and sends what it returned if it
-- returned a status. The handler is called directly, not under its own
-- xpcall or in a coroutine of its own, so that the JIT can compile the
-- whole request path; an error it raises is caught by the manager's
-- dispatch, which calls on_event_error below (answer 500) and goes on with
-- the next event. A handler that waits suspends the dispatcher task it
-- runs in (detach above); this goes on when it returns.
function Listener:handle(req)
  local res = new_response(req, self)
  if self.on_response then
    res.started = millis()
  end
  self.pending[req.id] = res
  self.current = res
  local status, body, hdrs = self.handler(req, res)
  if res.task then -- it had waited (self.current is no longer res)
    attached(self.mgr.sched, res)
  end
  if res.sent or res.chunked or res.closed then
    if self.current == res then
      self.current = nil
    end
    return
  end
  if type(status) == "number" then
    self.sending_returned = res
    res:send(status, body, hdrs) -- raises on an invalid response: 500
    self.sending_returned = nil
  elseif status ~= nil then
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " returned " .. type(status) .. " instead of a status number")
    send_500(res, TEXT_PLAIN)
  end
  -- Returned nothing and did not reply: the reply comes later (deferred).
  if self.current == res then
    self.current = nil
  end
end

-- A body callback (what: "on_chunk" or "on_end") of req failed: no more
-- callbacks; the client gets 500 and the connection closes (once the rest
-- of the body has been read) unless a reply was made already.
local function body_failed(self, req, id, what, err)
  req.body_chunk_fn = nil
  req.body_end_fn = nil
  local res = self.pending[id]
  if res and res.req == req then
    if res.chunked then
      res:close()
    elseif not res.sent and not res.closed then
      send_500(res, TEXT_PLAIN_CLOSE)
    end
  end
  self.mgr:log("error", "HTTP body callback " .. what .. " for " .. req.method .. " " .. req.path
               .. " failed: " .. error_text(err))
end

-- The finish functions of the body callbacks' tasks.
local function chunk_done(req, task, ok, err)
  if not ok then
    body_failed(req.listener, req, req.id, "on_chunk", err)
  end
end

local function end_done(req, task, ok, err)
  if not ok then
    body_failed(req.listener, req, req.id, "on_end", err)
  end
end

-- An error escaped while handling an event of this listener: from its
-- handler (res: the request of a handler that had waited; else the one
-- being handled), or from the listener itself (out of memory, say).
function Listener:on_event_error(err, res)
  if res == nil then
    res = self.current
    self.current = nil
  end
  -- The client is answered first: logging may fail on odd error values.
  if res and res.chunked and not res.sent then
    res:close() -- the status line is gone: the client sees a cut response
  elseif res and not res.sent and not res.closed then
    send_500(res, TEXT_PLAIN)
  end
  if res then -- a streamed body is skipped from now on
    res.req.body_chunk_fn = nil
    res.req.body_end_fn = nil
  end
  err = error_text(err)
  if not res then
    self.mgr:log("error", "HTTP listener event failed: " .. err)
    return
  end
  local req = res.req
  if self.sending_returned == res then
    self.sending_returned = nil
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " returned an invalid response: " .. err)
  else
    self.mgr:log("error", "HTTP handler for " .. req.method .. " " .. req.path
                 .. " failed: " .. err)
  end
end

function Listener:on_event(ev, id)
  local t = ev.type
  if t == EV_HTTP_MSG then
    self:handle(new_request(self.mgr, id, ev))
  elseif t == EV_CLOSE then
    self.streams[id] = nil
    local res = self.pending[id]
    if res then
      self.pending[id] = nil
      res.closed = true
      if res.chunked then
        response.finish(res) -- a cut chunked reply (an event stream) reaches on_response too
      else
        res.req:mark_done()
      end
      local task = res.task
      if task then -- the handler waits: its waits return nil, "closed"
        attached(self.mgr.sched, res)
        coro.cancel(task)
      end
      res.req:end_body("closed")
      local on_close = res.on_close_fn
      if on_close then
        self.mgr:protected_call("on_close", on_close, res)
      end
    end
  elseif t == EV_HTTP_HDRS then
    local req = new_request(self.mgr, id, ev)
    req.listener = self
    self.streams[id] = req
    self:handle(req)
  elseif t == EV_HTTP_BODY then
    local req = self.streams[id]
    if req then
      local fn = req.body_chunk_fn
      if fn then
        coro_run(self.mgr, chunk_done, req, fn, ffi_string(ev.data.ptr, ev.data.len))
      else -- for req:read_body()
        req:push_body(ffi_string(ev.data.ptr, ev.data.len))
      end
    end
  elseif t == EV_HTTP_BODY_END then
    local req = self.streams[id]
    self.streams[id] = nil
    if req then
      local fn = req.body_end_fn
      if fn then
        coro_run(self.mgr, end_done, req, fn)
      else
        req:end_body(nil)
      end
    end
  elseif t == EV_HTTP_REJECTED then
    self.mgr:log("info", "request rejected with " .. tonumber(ev.value) .. ": "
                 .. ffi_string(ev.data.ptr, ev.data.len))
    local hook = self.on_response
    if hook then
      self.mgr:protected_call("on_response", hook, rejection_record(self, ev, id))
    end
  elseif t == EV_ERROR then
    local msg = ffi_string(ev.data.ptr, ev.data.len)
    if band(ev.flags, F.LISTENER) ~= 0 then
      -- The listener itself (out of descriptors): once per episode.
      self.mgr:log("warn", "HTTP listener " .. (self:local_addr() or self.url) .. ": " .. msg)
      return
    end
    local fn = self.on_connection_error
    if fn then
      self.mgr:protected_call("on_connection_error", fn, msg, core.format_addr(ev.remote, true))
    else
      self.mgr:log("debug", "connection " .. id .. ": " .. msg)
    end
  end
end

core.add_endpoint_methods(Listener) -- close, local_addr, port

--- Responses not yet sent, by connection id (deferred replies).
function Listener:pending_count()
  return core.count(self.pending)
end

--- Sends data to every open WebSocket of this listener (but except): see
-- mongoose.websocket.broadcast.
function Listener:broadcast(data, kind, except, opts)
  local a, b = require("mongoose.websocket_server").broadcast(self, data, kind, except, opts, 3)
  return a, b
end

--- The open WebSockets of this listener, by connection id (a new table).
function Listener:websocket_connections()
  local open, open_ws_of = {}, require("mongoose.websocket_server").open_ws_of
  local object_of = require("mongoose.websocket").object_of
  for id, owner in pairs(self.mgr.owners) do
    if open_ws_of(self, owner) then
      open[id] = object_of(owner, id) -- a sleeping one is woken
    end
  end
  return open
end

-- Raises when the descriptor limit is below max_connections (warns: the
-- listener would fail accepts long before).
local function warn_fd_limit(mgr, url, max)
  local limit = core.fd_limit(false)
  if limit and max > limit then
    mgr:log("warn", "max_connections " .. max .. " for " .. url .. " is above the descriptor limit ("
            .. limit .. ", ulimit -n): accepts will fail before it is reached")
  end
end
_M.warn_fd_limit = warn_fd_limit

--- Opens an HTTP server on url with handler(req, res). opts: the limits of
-- core.LIMIT_SETS.http (see docs/http.md), tls (see mongoose.tls),
-- on_connection_error(err, remote), on_response(res) (every reply, the
-- glue's rejections included: see docs/http.md). level: where argument errors point
-- (default 3: the caller of Manager:http_listen).
function _M.listen(mgr, url, handler, opts, level)
  level = level or 3
  if type(url) ~= "string" then
    error("url must be a string", level)
  end
  if type(handler) ~= "function" then
    error("handler must be a function", level)
  end
  opts = core.opt_table(opts, level)
  core.check_option(opts, "on_connection_error", "function", level)
  core.check_option(opts, "on_response", "function", level)
  local tls = require("mongoose.tls")
  tls.check(opts.tls, level)
  core.check_limits(opts, "http", level)
  local id, err = mgr:open_connection("listen", url, core.PROTO.HTTP, opts.tls)
  if not id then
    return nil, err
  end
  local ok
  ok, err = core.apply_limits(mgr.cm, id, opts, "http")
  if not ok then
    C.mgffi_close(mgr.cm, id, 1)
    return nil, err
  end
  if opts.max_connections then
    warn_fd_limit(mgr, url, opts.max_connections)
  end
  local self = setmetatable({
    mgr = mgr, id = id, url = url, handler = handler, pending = {}, streams = {},
    is_listener = true, closed = false, on_connection_error = opts.on_connection_error,
    on_response = opts.on_response,
    handler_timeout = opts.request_timeout or core.LIMITS.request_timeout.http_default,
  }, Listener)
  mgr:own(id, self)
  mgr.listeners[id] = self
  return self
end

-- Old names of the request and response classes.
_M.Request = request.Request
_M.Response = response.Response

return _M
