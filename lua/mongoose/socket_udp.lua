-- mongoose.socket_udp: UDP cosockets (mongoose.socket.udp()), with the
-- API of OpenResty's ngx.socket.udp: setpeername, send, receive (waits
-- for the next datagram), settimeout, close. Datagrams that arrive while
-- nobody reads wait in a queue of at most MAX_QUEUED (the oldest go).
local ffi = require("ffi")
local core = require("mongoose.core")
local coro = require("mongoose.coro")
local socket = require("mongoose.socket")

local C, EV, ffi_string, type = core.C, core.EV, ffi.string, type
local error, tonumber, setmetatable, str_sub = error, tonumber, setmetatable, string.sub
local concat, running = table.concat, coro.running

local _M = {}

local DEFAULT_TIMEOUT = 60000
local MAX_QUEUED = 256
local MAX_DATAGRAM = 65536

local Udp = core.class("mongoose.socket.udp")
_M.Udp = Udp

function _M.new(mgr)
  local self = { mgr = mgr, id = nil, q = {}, qh = 1, qt = 0, reader = nil, want = MAX_DATAGRAM,
                 timeout = DEFAULT_TIMEOUT, err = nil }
  return socket.adopt(setmetatable(self, Udp))
end

function Udp:settimeout(ms)
  self.timeout = socket.check_timeout(ms, 2) or DEFAULT_TIMEOUT
end

--- The peer every datagram goes to and comes from: host (a name, resolved
-- without blocking, or an IP) and port. Returns 1, or nil and an error.
function Udp:setpeername(host, port)
  local perr
  port, perr = socket.check_peer(host, port)
  if not port then
    return nil, perr
  end
  local mgr = self.mgr
  if mgr.closed then
    return nil, "closed"
  end
  local ip, v6 = socket.resolve(mgr, host, self.timeout)
  if not ip then
    return nil, v6
  end
  if self.id then
    self:close()
  end
  local url = v6 and ("udp://[" .. ip .. "]:" .. port) or ("udp://" .. ip .. ":" .. port)
  if C.mgffi_connect(mgr.cm, url, #url, core.PROTO.RAW, mgr.id_out) ~= 0 then
    return nil, mgr:last_error()
  end
  self.id = tonumber(mgr.id_out[0])
  self.err = nil
  mgr:own(self.id, self)
  return 1
end

--- Sends one datagram: a string or a (nested) table of strings. Returns
-- 1, or nil and an error.
function Udp:send(data)
  if type(data) == "table" then
    local parts = {}
    local function add(t)
      for i = 1, #t do
        local v = t[i]
        if type(v) == "table" then
          add(v)
        else
          parts[#parts + 1] = tostring(v)
        end
      end
    end
    add(data)
    data = concat(parts)
  elseif type(data) ~= "string" then
    error("data must be a string or a table of strings", 2)
  end
  if self.id == nil then
    return nil, "closed"
  end
  if C.mgffi_send(self.mgr.cm, self.id, data, #data) ~= 0 then
    return nil, self.mgr:last_error()
  end
  return 1
end

function Udp:abort_wait(task, why)
  self.reader = nil
  return nil, why == "timeout" and "timeout" or "closed"
end

--- The next datagram (at most size bytes of it, default and maximum
-- 65536), waiting up to the timeout. Returns it, or nil and an error.
function Udp:receive(size)
  if size ~= nil and (type(size) ~= "number" or size < 0 or size % 1 ~= 0) then
    error("size must be a non-negative integer", 2)
  end
  size = size and size < MAX_DATAGRAM and size or MAX_DATAGRAM
  if self.id == nil then
    return nil, "closed"
  end
  local qh = self.qh
  if qh <= self.qt then
    local d = self.q[qh]
    self.q[qh] = nil
    self.qh = qh + 1
    return #d > size and str_sub(d, 1, size) or d
  end
  local task = running()
  if task == nil then
    return coro.call_blocking(self.mgr, 2, Udp.receive, self, size)
  end
  if self.reader then
    return nil, "socket busy reading"
  end
  self.reader, self.want = task, size
  return coro.wait(task, self, self.timeout)
end

function Udp:on_event(ev, id)
  local t = ev.type
  if t == EV.READ then
    local d = ffi_string(ev.data.ptr, ev.data.len)
    local task = self.reader
    if task then
      self.reader = nil
      local size = self.want
      return coro.wake(task, self, #d > size and str_sub(d, 1, size) or d)
    end
    local qt = self.qt + 1
    self.q[qt] = d
    self.qt = qt
    if qt - self.qh >= MAX_QUEUED then -- the oldest goes
      self.q[self.qh] = nil
      self.qh = self.qh + 1
    end
  elseif t == EV.ERROR then
    self.err = ffi_string(ev.data.ptr, ev.data.len)
  elseif t == EV.CLOSE then
    if self.id == id then
      self.id = nil
      local task = self.reader
      if task then
        self.reader = nil
        coro.wake(task, self, nil, self.err or "closed")
      end
    end
  end
end

--- Closes the socket. Returns 1, or nil, "closed" when it was not open.
function Udp:close()
  local id = self.id
  if id == nil then
    return nil, "closed"
  end
  self.id = nil
  self.q, self.qh, self.qt = {}, 1, 0
  self.mgr:drop(id, true)
  return 1
end

function Udp:on_task_end()
  if self.id and not self.reader then
    self:close()
  end
end

return _M
