-- mongoose.web.sse: server-sent events (the HTML standard's
-- text/event-stream) over a chunked response: events with event, id,
-- retry and multi-line data, comments, heartbeats, the client's
-- Last-Event-ID, and backpressure from the connection's send queue.
local core = require("mongoose.core")

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local str_find, str_gsub, concat = string.find, string.gsub, table.concat

local _M = {}

local Stream = core.class("mongoose.web.sse.Stream")
_M.Stream = Stream

local HEADERS = {
  ["Content-Type"] = "text/event-stream; charset=utf-8",
  ["Cache-Control"] = "no-cache",
  ["X-Accel-Buffering"] = "no",
}

local function closed_by_peer(self)
  if self.closed then
    return
  end
  self.closed = true
  if self.heartbeat then
    self.heartbeat:cancel()
    self.heartbeat = nil
  end
  core.run_close_hooks(self, self.mgr, "SSE close hook")
end

--- Starts an event stream as the reply to req. opts: retry (ms, told to
-- the client first), heartbeat (ms between comment lines that keep
-- proxies and the client from timing out; default 15000, 0: none),
-- max_queued (bytes waiting to be sent above which send() refuses;
-- default 1 MiB), headers (more response headers). Returns the stream,
-- or nil and an error.
function _M.start(req, res, opts)
  opts = core.opt_table(opts, 2)
  local hdrs = HEADERS
  if opts.headers then
    hdrs = core.copy_table(opts.headers)
    for k, v in pairs(HEADERS) do
      hdrs[k] = hdrs[k] or v
    end
  end
  local ok, err = res:begin(200, hdrs)
  if not ok then
    return nil, err
  end
  local self = setmetatable({
    req = req, res = res, mgr = res.mgr, id = res.id, closed = false,
    last_event_id = req:header("last-event-id"), max_queued = opts.max_queued or 1048576,
    close_hooks = nil, heartbeat = nil,
  }, Stream)
  res:on_close(function()
    closed_by_peer(self)
  end)
  if opts.retry then
    self:send_raw("retry: " .. math.floor(opts.retry) .. "\n\n")
  end
  local every = opts.heartbeat or 15000
  if every > 0 then
    self.heartbeat = res.mgr:set_interval(every, function()
      self:comment("ping")
    end)
  end
  return self
end

--- Sends bytes of the event-stream format as they are.
function Stream:send_raw(text)
  if self.closed then
    return nil, "closed"
  end
  local ok, err = self.res:write(text)
  if not ok then
    if err == "connection closed" then
      closed_by_peer(self)
      return nil, "closed"
    end
    return nil, err
  end
  return true
end

local function field(name, v, level)
  v = tostring(v)
  if str_find(v, "[\r\n%z]") then
    error(name .. " must not contain CR, LF or NUL", level + 1)
  end
  return name .. ": " .. v .. "\n"
end

local parts = {}

--- The text of one event: ev is the data (a string) or a table with data,
-- event, id, retry.
function _M.format(ev, level)
  level = (level or 1) + 1
  local n = 0
  local data = ev
  if type(ev) == "table" then
    data = ev.data
    if ev.event ~= nil then
      n = n + 1
      parts[n] = field("event", ev.event, level)
    end
    if ev.id ~= nil then
      n = n + 1
      parts[n] = field("id", ev.id, level)
    end
    if ev.retry ~= nil then
      n = n + 1
      parts[n] = "retry: " .. math.floor(ev.retry) .. "\n"
    end
  end
  if data ~= nil then
    data = tostring(data)
    n = n + 1
    -- Every line of the data its own data: field (CRLF, CR, LF alike).
    parts[n] = "data: " .. str_gsub(str_gsub(data, "\r\n?", "\n"), "\n", "\ndata: ") .. "\n"
  end
  n = n + 1
  parts[n] = "\n"
  return concat(parts, "", 1, n)
end

--- Sends an event (see format). Returns true, or nil and "send queue
-- full" (more than max_queued bytes wait: the client reads too slowly;
-- the event is not sent) or "closed".
function Stream:send(ev)
  if self.closed then
    return nil, "closed"
  end
  if self.res:send_queued() >= self.max_queued then
    return nil, "send queue full"
  end
  return self:send_raw(_M.format(ev, 2))
end

--- Sends a comment line (ignored by clients; keeps the stream alive).
function Stream:comment(text)
  text = tostring(text or "")
  if str_find(text, "[\r\n]") then
    error("comment must not contain CR or LF", 2)
  end
  return self:send_raw(": " .. text .. "\n\n")
end

--- Bytes waiting to be sent on the stream's connection.
function Stream:send_queued()
  return self.closed and 0 or self.res:send_queued()
end

--- Runs fn(stream) once the stream ends (client gone or close()).
Stream.add_close_hook = core.add_close_hook

--- Ends the stream (the last chunk; the connection stays for more
-- requests).
function Stream:close()
  if self.closed then
    return true
  end
  local res = self.res
  closed_by_peer(self)
  if not res.sent and not res.closed then
    res:finish()
  end
  return true
end

return _M
