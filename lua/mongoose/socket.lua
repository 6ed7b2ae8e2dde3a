-- mongoose.socket: cosockets, TCP and UDP sockets whose operations wait
-- without blocking, with the API of OpenResty's ngx.socket.tcp/udp:
--
--   local sock = socket.tcp()
--   sock:settimeout(1000)
--   assert(sock:connect("127.0.0.1", 6379))
--   sock:send({ "PING", "\r\n" })
--   local line, err = sock:receive("*l")
--   sock:setkeepalive(10000, 32)       -- back to the pool of 127.0.0.1:6379
--
-- Inside a task (a handler, callback, timer, mongoose.spawn) a wait yields
-- to the manager; in the main program it polls the manager until done.
-- A socket belongs to the manager of the task that created it (outside a
-- task: socket.tcp(mgr), or the most recent manager). Bytes received wait
-- in a Lua buffer until read; past max_buffer the connection is no longer
-- read until they are. Sockets a task leaves open are closed when it ends.
local ffi = require("ffi")
local core = require("mongoose.core")
local coro = require("mongoose.coro")
local pool = require("mongoose.socket_pool")
local read = require("mongoose.socket_read")

local C, EV, ERR, ffi_string = core.C, core.EV, core.ERR, ffi.string
local type, error, tostring, tonumber = type, error, tostring, tonumber
local setmetatable, str_find, str_sub, concat = setmetatable, string.find, string.sub, table.concat
local running, wait, wake = coro.running, coro.wait, coro.wake

local C_send, C_pause = C.mgffi_send, C.mgffi_pause_reading

local EV_READ, EV_CLOSE, EV_ERROR, EV_CONNECT = EV.READ, EV.CLOSE, EV.ERROR, EV.CONNECT
local EV_WRITE, EV_TLS_HS = EV.WRITE, EV.TLS_HS

local _M = {}

local DEFAULT_TIMEOUT = 60000 -- ms, as lua_socket_*_timeout
local DEFAULT_KEEPALIVE = 60000 -- ms, as lua_socket_keepalive_timeout

--- The CA certificates (PEM text or a file name) sslhandshake verifies
-- servers with when asked to verify (OpenResty: lua_ssl_trusted_certificate);
-- nil: the system's.
_M.trusted_certificate = nil

local BASE_MASK = core.mask(EV_READ, EV_CLOSE, EV_ERROR, EV_CONNECT)
local WRITE_MASK = core.mask(EV_READ, EV_CLOSE, EV_ERROR, EV_CONNECT, EV_WRITE)
local TLS_MASK = core.mask(EV_READ, EV_CLOSE, EV_ERROR, EV_CONNECT, EV_TLS_HS)

-- OpenResty's wording for the failures that libraries test for.
local function error_name(msg)
  if msg == nil then
    return "closed"
  elseif str_find(msg, "refused", 1, true) then
    return "connection refused"
  elseif str_find(msg, "reset by peer", 1, true) then
    return "connection reset by peer"
  elseif str_find(msg, "timed out", 1, true) then
    return "timeout"
  end
  return msg
end
_M.error_name = error_name

local function manager_for(mgr, level)
  if mgr ~= nil then
    if type(mgr) ~= "table" or mgr.cm == nil and not mgr.closed then
      error("expected a manager", level + 1)
    end
    return mgr
  end
  mgr = coro.current_manager()
  if mgr == nil then
    error("no manager: create one with mongoose.new_manager() first", level + 1)
  end
  return mgr
end

local function check_timeout(v, level)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
    error("timeout must be a non-negative number of milliseconds", level + 1)
  end
  return v
end
_M.check_timeout = check_timeout

-- The port of connect(host, port) and setpeername(host, port), checked
-- (raising at the caller's caller), or nil and an error.
local function check_peer(host, port)
  if type(host) ~= "string" then
    error("host must be a string", 3)
  end
  if str_sub(host, 1, 5) == "unix:" then
    return nil, "unix domain sockets are not supported"
  end
  port = tonumber(port)
  if not port or port < 0 or port > 65535 or port % 1 ~= 0 then
    error("port must be an integer from 0 to 65535", 3)
  end
  return port
end
_M.check_peer = check_peer

--- Gives sock to the running task, if any (what a task leaves open is
-- closed when it ends: sock:on_task_end). Returns sock.
local function adopt(sock)
  local task = coro.current()
  if task then
    sock.owner = task
    coro.adopt(task, sock)
  end
  return sock
end
_M.adopt = adopt

-- The ip text of host when it is an IPv4/IPv6 literal (brackets removed).
local function ip_literal(host)
  if str_find(host, "^%d+%.%d+%.%d+%.%d+$") then
    return host, false
  end
  local inner = host:match("^%[(.*)%]$") or host
  if str_find(inner, ":", 1, true) and str_find(inner, "^[%x:.]+$") then
    return inner, true
  end
  return nil
end
_M.ip_literal = ip_literal

--- host (a name or an IP) resolved to an IP without blocking: names go
-- through /etc/hosts and the resolv.conf name servers (mongoose.dns).
-- Returns ip, is_ipv6, or nil, err.
local function resolve(mgr, host, timeout)
  local ip, v6 = ip_literal(host)
  if ip then
    return ip, v6
  end
  return require("mongoose.dns").resolve_in_task(mgr, host, timeout)
end
_M.resolve = resolve

---------------------------------------------------------------------------
-- TCP
---------------------------------------------------------------------------

local Tcp = core.class("mongoose.socket.tcp")
_M.Tcp = Tcp

local function new_tcp(mgr)
  return setmetatable({
    mgr = mgr, id = nil, buf = "", pos = 1, eof = false, err = nil, reused = 0,
    ctimeout = DEFAULT_TIMEOUT, stimeout = DEFAULT_TIMEOUT, rtimeout = DEFAULT_TIMEOUT,
    reader = nil, want = nil, want_n = 0, connector = nil, writer = nil, paused = false,
    key = nil, tls = false, owner = nil, reusable = false,
  }, Tcp)
end

--- A new, unconnected TCP cosocket of mgr (default: the running task's
-- manager, else the most recent one).
function _M.tcp(mgr)
  return adopt(new_tcp(manager_for(mgr, 2)))
end

--- For the HTTP client: a socket connected by a connection of the pool
-- key, taken from it (the socket object that was pooled with it when
-- there is one: see Tcp:setkeepalive), given to the running task; or nil
-- when the pool is empty. Such sockets are pooled with their objects.
function _M.take_pooled(mgr, key)
  local id, reused, tls, sock = pool.take(mgr, key)
  if id == nil then
    return nil
  end
  if not sock then
    sock = new_tcp(mgr)
  end
  sock.id, sock.reused, sock.tls, sock.key, sock.reusable = id, reused + 1, tls, key, true
  sock.err, sock.eof = nil, false
  mgr:own(id, sock)
  return adopt(sock)
end

--- For the HTTP client: a new socket, pooled with its object (see
-- take_pooled).
function _M.tcp_reusable(mgr)
  local sock = adopt(new_tcp(mgr))
  sock.reusable = true
  return sock
end

function Tcp:settimeout(ms)
  check_timeout(ms, 2)
  ms = ms or DEFAULT_TIMEOUT
  self.ctimeout, self.stimeout, self.rtimeout = ms, ms, ms
end

function Tcp:settimeouts(connect_ms, send_ms, read_ms)
  self.ctimeout = check_timeout(connect_ms, 2) or DEFAULT_TIMEOUT
  self.stimeout = check_timeout(send_ms, 2) or DEFAULT_TIMEOUT
  self.rtimeout = check_timeout(read_ms, 2) or DEFAULT_TIMEOUT
end

-- The socket's connection is gone (or given to the pool): forget it.
local function detach(self)
  local id = self.id
  self.id = nil
  self.buf, self.pos, self.eof, self.paused = "", 1, false, false
  return id
end

-- A blocking call from the main program: the same method in a task.
local function blocking(self, method, a, b, c)
  return coro.call_blocking(self.mgr, 3, method, self, a, b, c)
end

function Tcp:abort_wait(task, why)
  if self.reader == task then
    self.reader = nil
    local partial = str_sub(self.buf, self.pos)
    self.buf, self.pos = "", 1
    if why == "timeout" then
      return nil, "timeout", partial
    end
    return nil, "closed", partial
  elseif self.connector == task then
    self.connector = nil
    local id = detach(self)
    if id then
      self.mgr:drop(id, true)
    end
  elseif self.writer == task then
    self.writer = nil
  end
  return nil, why == "timeout" and "timeout" or "closed"
end

local serve_reader, check_buffer, compact = read.serve_reader, read.check_buffer, read.compact
local MAX_BUFFER = read.MAX_BUFFER
Tcp.receive = read.receive
Tcp.receiveany = read.receiveany
Tcp.receiveuntil = read.receiveuntil

--- The number of idle connections pooled under key on mgr.
_M.pool_count = pool.count

function Tcp:on_event(ev, id)
  local t = ev.type
  if t == EV_READ then
    local data = ffi_string(ev.data.ptr, ev.data.len)
    if self.pos > #self.buf then
      self.buf, self.pos = data, 1
    else
      compact(self)
      self.buf = self.buf .. data
    end
    if self.reader then
      serve_reader(self)
    end
    if self.id == id then
      check_buffer(self)
    end
  elseif t == EV_CONNECT then
    if not self.tls_pending then
      local task = self.connector
      if task then
        self.connector = nil
        wake(task, self, 1)
      end
    end
  elseif t == EV_TLS_HS then
    self.tls_pending = false
    local task = self.connector
    if task then
      self.connector = nil
      C.mgffi_set_event_mask(self.mgr.cm, id, BASE_MASK)
      wake(task, self, true)
    end
  elseif t == EV_WRITE then
    local task = self.writer
    if task and core.send_queued(self.mgr.cm, id) < MAX_BUFFER / 2 then
      self.writer = nil
      wake(task, self, true)
    end
  elseif t == EV_ERROR then
    self.err = error_name(ffi_string(ev.data.ptr, ev.data.len))
  elseif t == EV_CLOSE then
    if self.id ~= id then
      return
    end
    self.eof = true
    self.id_closed = id
    local err = self.err or "closed"
    local task = self.connector
    if task then
      self.connector = nil
      detach(self)
      wake(task, self, nil, err)
    end
    task = self.writer
    if task then
      self.writer = nil
      wake(task, self, nil, err)
    end
    serve_reader(self)
  end
end

--- Connects to host (a name, resolved without blocking, or an IP) and
-- port. opts: pool (the pool's name, default "host:port"), pool_size.
-- A connection from the pool is taken when there is one. Returns 1, or
-- nil and an error ("connection refused", "timeout", ...).
function Tcp:connect(host, port, opts)
  local perr
  port, perr = check_peer(host, port)
  if not port then
    return nil, perr
  end
  core.opt_table(opts, 2)
  local mgr = self.mgr
  if mgr.closed then
    return nil, "closed"
  end
  if self.id then
    self:close()
  end
  self.err, self.eof, self.tls = nil, false, false
  local key = opts and opts.pool or (host .. ":" .. port)
  self.key = key
  local id, reused, tls = pool.take(mgr, key)
  if id then
    self.id, self.reused, self.tls = id, reused + 1, tls
    mgr:own(id, self)
    return 1
  end
  local task = running()
  if task == nil then
    return blocking(self, Tcp.connect, host, port, opts)
  end
  local ip, v6 = resolve(mgr, host, self.ctimeout)
  if not ip then
    return nil, v6
  end
  -- opts.tls_material (from mongoose.tls.prepare): TLS from the start.
  local material = opts and opts.tls_material
  local scheme = material and "tls://" or "tcp://"
  local url = v6 and (scheme .. "[" .. ip .. "]:" .. port) or (scheme .. ip .. ":" .. port)
  local rc = C.mgffi_connect(mgr.cm, url, #url, core.PROTO.RAW, mgr.id_out)
  if rc ~= 0 then
    return nil, mgr:last_error()
  end
  id = tonumber(mgr.id_out[0])
  if material then
    local ok, err = require("mongoose.tls").install(mgr, id, material)
    if not ok then
      return nil, err
    end
    self.tls = true
  end
  self.id, self.reused = id, 0
  mgr:own(id, self)
  self.connector = task
  local ok, err = wait(task, self, self.ctimeout)
  if not ok then
    self.connector = nil
    if self.id then
      mgr:drop(detach(self), true)
    end
    return nil, err
  end
  return 1
end

--- Starts TLS on the connected socket and waits for the handshake.
-- reused_session is ignored (no session reuse); server_name is sent as
-- SNI and, with verify (default false, as OpenResty's), checked against
-- the certificate, which must chain to opts_tls.ca or the system CAs.
-- Returns true, or nil and an error.
function Tcp:sslhandshake(reused_session, server_name, verify, _, opts_tls)
  if server_name ~= nil and type(server_name) ~= "string" then
    error("server_name must be a string", 2)
  end
  local task = running()
  if task == nil then
    return blocking(self, Tcp.sslhandshake, reused_session, server_name, verify)
  end
  if not self.id then
    return nil, "closed"
  end
  if self.tls then
    return true -- a pooled connection that did its handshake already
  end
  local tls = require("mongoose.tls")
  local o = { insecure = not verify }
  if verify then
    o.name = server_name
    o.ca = opts_tls and opts_tls.ca or _M.trusted_certificate
  end
  local material, err = tls.prepare("tls://" .. (server_name or "localhost"), o, true)
  if not material then
    return nil, err
  end
  if not verify then
    material.name = server_name or ""
    material.insecure = true
  end
  local mgr = self.mgr
  C.mgffi_set_event_mask(mgr.cm, self.id, TLS_MASK)
  self.tls_pending = true
  local m = material
  local rc = C.mgffi_tls_set(mgr.cm, self.id, m.ca, #m.ca, m.cert, #m.cert, m.key, #m.key, m.name,
                             #m.name, m.insecure and 1 or 0)
  if rc ~= 0 then
    return nil, mgr:last_error()
  end
  self.connector = task
  local ok
  ok, err = wait(task, self, self.ctimeout)
  if not ok then
    return nil, err and ("handshake failed: " .. err) or "handshake failed"
  end
  self.tls = true
  return true
end

-- Appends the strings (numbers, booleans) of nested tables to parts.
local function flatten(v, parts, n, level)
  local tv = type(v)
  if tv == "string" then
    n = n + 1
    parts[n] = v
  elseif tv == "number" or tv == "boolean" then
    n = n + 1
    parts[n] = tostring(v)
  elseif tv == "table" then
    for i = 1, #v do
      n = flatten(v[i], parts, n, level + 1)
    end
  elseif tv == "nil" then
    error("bad data: nil", level + 1)
  else
    error("bad data type: " .. tv, level + 1)
  end
  return n
end

local parts = {}

--- Sends data: a string or a (nested) table of strings and numbers.
-- Returns the number of bytes queued, or nil and an error. Waits (up to
-- the send timeout) only while the connection's send queue is full.
function Tcp:send(data)
  if type(data) ~= "string" then
    local n = flatten(data, parts, 0, 2)
    data = concat(parts, "", 1, n)
    for i = 1, n do
      parts[i] = nil
    end
  end
  local mgr = self.mgr
  local id = self.id
  if id == nil or self.eof or mgr.closed then
    return nil, self.err or "closed"
  end
  local rc = C_send(mgr.cm, id, data, #data)
  while rc == ERR.FULL do
    local task = running()
    if task == nil then
      return blocking(self, Tcp.send, data)
    end
    C.mgffi_set_event_mask(mgr.cm, id, WRITE_MASK)
    self.writer = task
    local ok, err = wait(task, self, self.stimeout)
    C.mgffi_set_event_mask(mgr.cm, id, BASE_MASK)
    if not ok then
      return nil, err
    end
    if self.id ~= id then
      return nil, "closed"
    end
    rc = C_send(mgr.cm, id, data, #data)
  end
  if rc ~= 0 then
    return nil, rc == ERR.NO_CONN and "closed" or mgr:last_error()
  end
  return #data
end

--- Puts the connection into the pool of the host:port it was connected to
-- (or of opts.pool), to be kept for timeout ms (0: until the peer closes;
-- default 60000) in a pool of at most size connections (default 30). The
-- socket is closed for its owner. Returns 1, or nil and an error.
function Tcp:setkeepalive(timeout, size)
  check_timeout(timeout, 2)
  if size ~= nil and (type(size) ~= "number" or size < 1 or size % 1 ~= 0) then
    error("size must be a positive integer", 2)
  end
  local id = self.id
  if id == nil or self.eof then
    return nil, "closed"
  end
  if self.reader or self.writer or self.connector then
    return nil, "socket busy"
  end
  if self.pos <= #self.buf then
    self:close()
    return nil, "unread data in buffer"
  end
  local mgr = self.mgr
  if self.paused then
    C_pause(mgr.cm, id, 0)
  end
  detach(self)
  local reusable = self.reusable
  if reusable then -- the HTTP client's: the object goes with the connection
    self.owner = nil
  end
  pool.put(mgr, self.key, id, self.reused, timeout or DEFAULT_KEEPALIVE, size, self.tls,
           reusable and self or nil)
  return 1
end

--- How many times the current connection came from the pool (0: new).
function Tcp:getreusedtimes()
  if self.id == nil then
    return nil, "closed"
  end
  return self.reused
end

--- Closes the connection (after sending what is queued). Returns 1, or
-- nil, "closed" when it was not connected.
function Tcp:close()
  local id = self.id
  if id == nil then
    return nil, "closed"
  end
  detach(self)
  self.mgr:drop(id, false)
  return 1
end

-- The task that created the socket ended: a connection it left is closed
-- (unless the socket went to the pool and then to another task).
function Tcp:on_task_end(task)
  if self.owner ~= task then
    return
  end
  self.owner = nil
  if self.id and not self.reader and not self.connector then
    self:close()
  end
end

function Tcp:setoption()
  return true -- keepalive, tcp-nodelay, ...: Mongoose sets TCP_NODELAY itself
end

function Tcp:getfd()
  local info = self.id and core.conn_info(self.mgr.cm, self.id)
  return info and info.fd or nil
end

--- The peer as "1.2.3.4:5678" (the connection's remote address).
function Tcp:getpeername()
  local info = self.id and core.conn_info(self.mgr.cm, self.id)
  if not info then
    return nil, "closed"
  end
  local r = info.remote
  return core.format_addr(r, false), r.port
end

_M.udp = function(mgr)
  return require("mongoose.socket_udp").new(manager_for(mgr, 2))
end

return _M
