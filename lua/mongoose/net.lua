-- mongoose.net: raw TCP and UDP servers and clients. Bytes arrive as READ
-- events; a handler sees them through a view (pointer + length) that it
-- copies to a string only if it wants to. Framing helpers (read exactly N
-- bytes, read up to a delimiter) buffer in Lua with a size cap.
local ffi = require("ffi")
local core = require("mongoose.core")
local coro = require("mongoose.coro")
local net_wait = require("mongoose.net_wait")

ffi.cdef [[
int mgffi_shutdown_write(mgffi_manager *m, uint64_t id);
int mgffi_udp_send_to(mgffi_manager *m, uint64_t id, const mgffi_addr *to, const void *buf, size_t len);
int mgffi_addr_parse(const char *text, size_t len, mgffi_addr *out);
]]

local C, EV, ffi_string, ffi_copy = core.C, core.EV, ffi.string, ffi.copy
local type, error, setmetatable, str_find = type, error, setmetatable, string.find
local str_sub, tbl_remove, ffi_cast = string.sub, table.remove, ffi.cast
local CONST_CHAR_PTR = ffi.typeof("const char *")

local C_send, send_result = C.mgffi_send, core.send_result

local _M = {}

---------------------------------------------------------------------------
-- Views: handed to on_data/on_datagram, valid only during that call
---------------------------------------------------------------------------

local View = {}
View.__index = View
View.__tostring = function(v) return v:string() end

--- Copies the bytes into a Lua string.
function View:string()
  if self.len == 0 then
    return ""
  end
  return ffi_string(self.ptr, self.len)
end

local Address = {}
Address.__index = Address
Address.__tostring = function(a) return core.format_addr(a.addr, true) end

--- "1.2.3.4:5678" / "[::1]:5678".
function Address:string()
  return core.format_addr(self.addr, true)
end

function Address:ip()
  return core.format_addr(self.addr, false)
end

function Address:port()
  return self.addr.port
end

--- A copy that stays valid after the handler returns.
function Address:copy()
  local a = ffi.new("mgffi_addr")
  ffi_copy(a, self.addr, ffi.sizeof("mgffi_addr"))
  return setmetatable({ addr = a }, Address)
end

--- Parses "1.2.3.4:80" or "[::1]:80" into an address, or nil, err.
function _M.address(text)
  if type(text) ~= "string" then
    error("address must be a string", 2)
  end
  local a = ffi.new("mgffi_addr")
  if C.mgffi_addr_parse(text, #text, a) ~= 0 then
    return nil, "invalid address: " .. text
  end
  return setmetatable({ addr = a }, Address)
end

---------------------------------------------------------------------------
-- TCP connections
---------------------------------------------------------------------------

local Conn = core.class("mongoose.net.Connection")
_M.Connection = Conn

local function new_conn(mgr, id, opts, listener)
  local self = setmetatable({
    mgr = mgr, id = id, state = {}, listener = listener, closed = false, connected = false,
    on_connect = opts.on_connect, on_data = opts.on_data, on_close = opts.on_close,
    on_error = opts.on_error, max_buffer = opts.max_buffer or 1048576,
    view = setmetatable({ ptr = nil, len = 0 }, View),
    readers = nil, buffer = nil, remote = nil,
  }, Conn)
  return self
end

-- Raises at the caller's caller unless data is a string.
local function check_data(data)
  if type(data) ~= "string" then
    error("data must be a string", 3)
  end
end

-- Queues data on the connection or socket self.
local function send_bytes(self, data)
  if self.closed then
    return nil, "closed"
  end
  return send_result(self.mgr, C_send(self.mgr.cm, self.id, data, #data))
end

--- Queues bytes for sending. Returns true, or nil and an error.
function Conn:send(data)
  check_data(data)
  return send_bytes(self, data)
end

--- Closes after the queued data is sent (immediately = true: at once).
function Conn:close(immediately)
  if self.closed then
    return true
  end
  self.closing = true
  C.mgffi_close(self.mgr.cm, self.id, immediately and 1 or 0)
  return true
end

--- Half-close: sends what is queued, then no more; reading goes on.
function Conn:shutdown()
  if self.closed then
    return nil, "closed"
  end
  return send_result(self.mgr, C.mgffi_shutdown_write(self.mgr.cm, self.id))
end

core.add_connection_methods(Conn) -- pause, resume, send_queued

--- The peer as "1.2.3.4:5678" / "[::1]:5678".
function Conn:remote_addr()
  return self.remote
end

-- Framing: readers wait for bytes; while one is pending, data goes to
-- self.buffer and the readers instead of on_data.

-- Serves the pending readers in order from self.buffer. It walks the buffer
-- with a position and cuts it once at the end (many small frames in one
-- read stay linear); a reader added by a reader's callback is served by the
-- same loop, after that callback returns.
local function run_readers(self)
  if self.serving then
    return
  end
  local buf = self.buffer
  if not buf then
    buf = ""
  end
  local pos, size = 1, #buf
  self.serving = true
  while not self.closed do
    local readers = self.readers
    local r = readers and readers[1]
    if r == nil then
      break
    end
    local frame
    local count = r.count
    if count then
      if size - pos + 1 < count then
        break
      end
      frame = str_sub(buf, pos, pos + count - 1)
      pos = pos + count
    else
      local s, e = str_find(buf, r.delimiter, pos, true)
      if not s then
        break
      end
      frame = str_sub(buf, pos, r.keep and e or s - 1)
      pos = e + 1
    end
    tbl_remove(readers, 1)
    if r.task then -- conn:read() in a task: it waits for this frame
      coro.wake(r.task, self, frame)
    else
      self.mgr:event_call(self, "TCP reader", r.fn, self, frame)
    end
  end
  self.serving = false
  if pos > size then
    self.buffer = nil
  elseif pos > 1 then
    self.buffer = str_sub(buf, pos)
  end
end

-- Hands bytes left over by the readers (a Lua string) to on_data as a view.
local function deliver_rest(self, fn, rest)
  local view = self.view
  view.ptr, view.len = ffi_cast(CONST_CHAR_PTR, rest), #rest
  view.anchor = rest -- keeps the bytes alive while view.ptr points at them
  self.mgr:event_call(self, "TCP on_data", fn, self, view)
  view.ptr, view.len, view.anchor = nil, 0, nil
end

-- Readers without a callback (in a task): mongoose.net_wait.
local wait_reader = net_wait.wait_reader
Conn.abort_wait = net_wait.abort_wait

local function add_reader(self, reader)
  if reader.fn == nil then
    local task = coro.running()
    if task == nil then
      error("a reader without a callback must run in a task (a handler or callback)", 3)
    end
    return wait_reader(self, reader, task)
  end
  if type(reader.fn) ~= "function" then
    error("callback must be a function", 3)
  end
  self.readers = self.readers or {}
  self.readers[#self.readers + 1] = reader
  run_readers(self)
end

--- Calls fn(conn, bytes) once exactly n bytes have arrived. Without fn,
-- in a task: waits for them (up to timeout_ms, if given) and returns
-- them, or nil and "closed" (or "timeout").
function Conn:read(n, fn, timeout_ms)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("n must be a non-negative integer", 2)
  end
  return add_reader(self, { count = n, fn = fn, timeout = timeout_ms })
end

--- Calls fn(conn, bytes) with the bytes up to delimiter (not included unless
-- keep is true), e.g. conn:read_until("\n", fn) for a line protocol.
-- Without fn, in a task: waits for them and returns them, like read.
function Conn:read_until(delimiter, fn, keep, timeout_ms)
  if type(delimiter) ~= "string" or delimiter == "" then
    error("delimiter must be a non-empty string", 2)
  end
  return add_reader(self, { delimiter = delimiter, fn = fn, keep = keep, timeout = timeout_ms })
end

function Conn:on_event(ev, id)
  local t = ev.type
  if t == EV.READ then
    local readers = self.readers
    local buf = self.buffer
    if (readers and readers[1]) or buf then
      local data = ffi_string(ev.data.ptr, ev.data.len)
      self.buffer = buf and buf .. data or data
      run_readers(self)
      local rest = self.buffer
      if rest then
        -- What no pending reader claimed: to on_data when no reader is
        -- left, else kept for the readers, up to max_buffer bytes.
        local fn = self.on_data
        readers = self.readers
        if fn and not (readers and readers[1]) and not self.closing then
          self.buffer = nil
          deliver_rest(self, fn, rest)
        elseif #rest > self.max_buffer then
          self.mgr:log("info", "TCP " .. id .. ": more than " .. self.max_buffer .. " bytes buffered, closing")
          self.error = "max_buffer exceeded"
          self:close(true)
        end
      end
      return
    end
    local fn = self.on_data
    if fn then
      local view = self.view
      view.ptr, view.len = ev.data.ptr, tonumber(ev.data.len)
      self.mgr:event_call(self, "TCP on_data", fn, self, view)
      view.ptr, view.len = nil, 0
    end
  elseif t == EV.ACCEPT or t == EV.CONNECT then
    self.connected = true
    self.remote = core.format_addr(ev.remote, true)
    local fn = self.on_connect
    if fn then
      self.mgr:event_call(self, "TCP on_connect", fn, self)
    end
  elseif t == EV.ERROR then
    self.error = ffi_string(ev.data.ptr, ev.data.len)
    local fn = self.on_error
    if fn then
      self.mgr:event_call(self, "TCP on_error", fn, self, self.error)
    end
  elseif t == EV.CLOSE then
    self.closed = true
    local l = self.listener
    if l then
      l.connections[id] = nil
    end
    -- Readers waiting in tasks get nil, "closed" (callback readers: nothing).
    local readers = self.readers
    if readers then
      for i = #readers, 1, -1 do
        local r = readers[i]
        if r.task then
          tbl_remove(readers, i)
          coro.wake(r.task, self, nil, "closed")
        end
      end
    end
    local fn = self.on_close
    if fn then
      self.mgr:event_call(self, "TCP on_close", fn, self, self.error)
    end
  end
end

---------------------------------------------------------------------------
-- TCP listener
---------------------------------------------------------------------------

local TcpListener = core.class("mongoose.net.TcpListener")
_M.TcpListener = TcpListener

function TcpListener:on_event(ev, id)
  if ev.type == EV.ACCEPT and id ~= self.id then
    local conn = new_conn(self.mgr, id, self.opts, self)
    self.connections[id] = conn
    self.mgr:own(id, conn)
    -- on_accept sees the connection first; on_connect-style setup there.
    conn.connected = true
    conn.remote = core.format_addr(ev.remote, true)
    local fn = self.opts.on_accept
    if fn then
      self.mgr:event_call(self, "TCP on_accept", fn, conn)
    end
  elseif ev.type == EV.ERROR and id == self.id then
    -- The listener itself (out of descriptors): once per episode.
    self.mgr:log("warn", "TCP listener " .. (self:local_addr() or self.url) .. ": "
                 .. ffi_string(ev.data.ptr, ev.data.len))
  end
end

core.add_endpoint_methods(TcpListener) -- close, local_addr, port

--- Number of open connections accepted by this listener.
function TcpListener:connection_count()
  return core.count(self.connections)
end

local function check_opts(opts, level)
  opts = core.opt_table(opts, level + 1)
  for _, name in ipairs({ "on_accept", "on_connect", "on_data", "on_close", "on_error", "on_datagram" }) do
    core.check_option(opts, name, "function", level + 1)
  end
  local max_buffer = opts.max_buffer
  if max_buffer ~= nil and not core.is_integer_in(max_buffer, 1, math.huge) then
    error("max_buffer must be a positive integer (bytes)", level + 1)
  end
  return opts
end

--- Listens on tcp://HOST:PORT. opts: on_accept(conn), on_data(conn, view),
-- on_close(conn, err), on_error(conn, err), max_buffer (framing helpers).
local TCP_SCHEMES = { tcp = true, tls = true, ssl = true, tcps = true }
local UDP_SCHEMES = { udp = true }

local function check_scheme(url, schemes, what)
  local scheme = url:match("^(%a[%w+.-]*)://")
  if not scheme or not schemes[scheme:lower()] then
    local names = {}
    for name in pairs(schemes) do
      names[#names + 1] = name .. "://"
    end
    table.sort(names)
    return nil, what .. " takes " .. table.concat(names, ", ") .. " URLs, not " .. url
  end
  return true
end

-- What tcp_listen, tcp_connect, udp_listen and udp_connect share: argument
-- checks (raised at the user's call), the connection, TLS and limits.
-- Returns id, opts or nil, err.
local function open_raw(mgr, kind, url, opts, schemes, what, make)
  if type(url) ~= "string" then
    error("url must be a string", 4)
  end
  local scheme_ok, scheme_err = check_scheme(url, schemes, what)
  if not scheme_ok then
    return nil, scheme_err
  end
  opts = check_opts(opts, 4)
  local tls = require("mongoose.tls")
  tls.check(opts.tls, 4)
  local set = kind == "listen" and "tcp_listener" or "tcp"
  core.check_limits(opts, set, 4)
  local id, err = mgr:open_connection(kind, url, core.PROTO.RAW, opts.tls)
  if not id then
    return nil, err
  end
  local ok
  ok, err = core.apply_limits(mgr.cm, id, opts, set)
  if not ok then
    C.mgffi_close(mgr.cm, id, 1)
    return nil, err
  end
  if kind == "listen" and opts.max_connections then
    require("mongoose.http").warn_fd_limit(mgr, url, opts.max_connections)
  end
  return make(mgr, id, opts, kind == "listen")
end

-- Not tail calls (open_raw's argument errors point 4 levels up, at the
-- caller of mgr:tcp_listen and the others).
function _M.tcp_listen(mgr, url, opts)
  local l, err = open_raw(mgr, "listen", url, opts, TCP_SCHEMES, "tcp_listen", function(_, id, o)
    local self = setmetatable({ mgr = mgr, id = id, url = url, opts = o, connections = {},
                                is_listener = true, closed = false }, TcpListener)
    mgr:own(id, self)
    mgr.listeners[id] = self
    return self
  end)
  return l, err
end

--- Connects to tcp://HOST:PORT. opts: on_connect(conn), on_data(conn,
-- view), on_close(conn, err), on_error(conn, err) (a refused connection is
-- on_error then on_close). Returns the connection, or nil, err.
function _M.tcp_connect(mgr, url, opts)
  local conn, err = open_raw(mgr, "connect", url, opts, TCP_SCHEMES, "tcp_connect", function(_, id, o)
    local c = new_conn(mgr, id, o, nil)
    mgr:own(id, c)
    return c
  end)
  return conn, err
end

---------------------------------------------------------------------------
-- UDP
---------------------------------------------------------------------------

local Udp = core.class("mongoose.net.UdpSocket")
_M.UdpSocket = Udp

function Udp:on_event(ev, id)
  local t = ev.type
  if t == EV.READ then
    local fn = self.on_datagram
    if fn then
      local view, from = self.view, self.from
      view.ptr, view.len = ev.data.ptr, tonumber(ev.data.len)
      from.addr = ev.remote
      self.mgr:event_call(self, "UDP on_datagram", fn, self, view, from)
      view.ptr, view.len = nil, 0
      from.addr = nil
    end
  elseif t == EV.ERROR then
    self.error = ffi_string(ev.data.ptr, ev.data.len)
    if self.on_error then
      self.mgr:event_call(self, "UDP on_error", self.on_error, self, self.error)
    end
  elseif t == EV.CLOSE then
    self.closed = true
    if self.on_close then
      self.mgr:event_call(self, "UDP on_close", self.on_close, self, self.error)
    end
  end
end

--- Sends a datagram to to (an address from on_datagram, or "ip:port").
function Udp:send_to(to, data)
  check_data(data)
  if self.closed then
    return nil, "closed"
  end
  local addr
  if type(to) == "string" then
    local a, err = _M.address(to)
    if not a then
      return nil, err
    end
    addr = a.addr
  elseif type(to) == "table" and to.addr ~= nil then
    addr = to.addr
  else
    error("to must be an address or an \"ip:port\" string", 2)
  end
  return send_result(self.mgr, C.mgffi_udp_send_to(self.mgr.cm, self.id, addr, data, #data))
end

--- Sends a datagram to the connected peer (udp_connect) or, for a
-- listener, to the sender of the datagram being handled.
function Udp:send(data)
  check_data(data)
  if self.from.addr ~= nil then
    return self:send_to(self.from, data)
  end
  return send_bytes(self, data)
end

core.add_endpoint_methods(Udp) -- close, local_addr, port

local function new_udp(mgr, id, opts, is_listener)
  local self = setmetatable({
    mgr = mgr, id = id, state = {}, closed = false, is_listener = is_listener,
    on_datagram = opts.on_datagram, on_error = opts.on_error, on_close = opts.on_close,
    view = setmetatable({ ptr = nil, len = 0 }, View),
    from = setmetatable({ addr = nil }, Address),
  }, Udp)
  mgr:own(id, self)
  return self
end

--- Listens on udp://HOST:PORT. opts: on_datagram(sock, view, from) (reply
-- with sock:send(data) or sock:send_to(from, data)), on_error, on_close.
function _M.udp_listen(mgr, url, opts)
  local sock, err = open_raw(mgr, "listen", url, opts, UDP_SCHEMES, "udp_listen", new_udp)
  return sock, err
end

--- A UDP socket sending to udp://HOST:PORT; replies arrive in on_datagram.
function _M.udp_connect(mgr, url, opts)
  local sock, err = open_raw(mgr, "connect", url, opts, UDP_SCHEMES, "udp_connect", new_udp)
  return sock, err
end

return _M
