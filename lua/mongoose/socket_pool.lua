-- mongoose.socket_pool: the connection pools of cosockets (setkeepalive)
-- and of the HTTP client: idle connections of a manager by key
-- ("host:port", a pool name), most recently used first. An idle
-- connection that receives a byte or closes leaves its pool; the glue
-- closes one that stays idle for its keepalive timeout. The HTTP client's
-- sockets are pooled with their connections (the socket object is reused
-- with it: nothing is allocated for a pooled request).
local core = require("mongoose.core")

local C, EV, setmetatable = core.C, core.EV, setmetatable
local EV_READ, EV_CLOSE = EV.READ, EV.CLOSE
local IDLE_TIMEOUT = core.LIMITS.idle_timeout.key

local _M = {}

local DEFAULT_POOL_SIZE = 30 -- as lua_socket_pool_size
_M.DEFAULT_POOL_SIZE = DEFAULT_POOL_SIZE

local Pool = core.class("mongoose.socket.Pool")

local function pool_of(mgr, key, create)
  local pools = mgr.socket_pools
  if pools == nil then
    if not create then
      return nil
    end
    pools = {}
    mgr.socket_pools = pools
  end
  local p = pools[key]
  if p == nil and create then
    p = setmetatable({ mgr = mgr, key = key, n = 0, ids = {}, reused = {}, tls = {},
                       socks = {}, size = DEFAULT_POOL_SIZE }, Pool)
    pools[key] = p
  end
  return p
end

local function pool_drop(p, i)
  local n = p.n
  local ids, reused, tls, socks = p.ids, p.reused, p.tls, p.socks
  for j = i, n - 1 do
    ids[j], reused[j], tls[j], socks[j] = ids[j + 1], reused[j + 1], tls[j + 1], socks[j + 1]
  end
  ids[n], reused[n], tls[n], socks[n] = nil, nil, nil, nil
  p.n = n - 1
end

-- An idle connection: any byte or a close makes it useless.
function Pool:on_event(ev, id)
  local t = ev.type
  if t ~= EV_READ and t ~= EV_CLOSE then
    return
  end
  local ids = self.ids
  for i = 1, self.n do
    if ids[i] == id then
      pool_drop(self, i)
      break
    end
  end
  if t == EV_READ then
    self.mgr:drop(id, true)
  end
end

-- Takes the most recently pooled connection; returns id, its reuse count,
-- whether it speaks TLS and the socket pooled with it (or false), or nil.
function _M.take(mgr, key)
  local p = pool_of(mgr, key, false)
  if p == nil or p.n == 0 then
    return nil
  end
  local n = p.n
  local socks = p.socks
  local id, reused, tls, sock = p.ids[n], p.reused[n], p.tls[n], socks[n]
  p.ids[n], p.reused[n], p.tls[n], socks[n] = nil, nil, nil, nil
  p.n = n - 1
  C.mgffi_set_limit(mgr.cm, id, IDLE_TIMEOUT, 0)
  return id, reused, tls, sock
end

-- Pools connection id under key for timeout ms (0: until the peer
-- closes), in a pool of at most size (nil: as it is); sock: the socket
-- object to hand out with it again, or nil.
function _M.put(mgr, key, id, reused, timeout, size, tls, sock)
  local p = pool_of(mgr, key, true)
  if size and size > 0 then
    p.size = size
  end
  if p.n >= p.size then -- the least recently used one goes
    local old = p.ids[1]
    pool_drop(p, 1)
    mgr:drop(old, true)
  end
  local n = p.n + 1
  p.n = n
  p.ids[n], p.reused[n], p.tls[n], p.socks[n] = id, reused, tls or false, sock or false
  mgr:own(id, p)
  -- The glue closes it after timeout ms without traffic (0: never).
  C.mgffi_set_limit(mgr.cm, id, IDLE_TIMEOUT, timeout)
end

--- The number of idle connections pooled under key on mgr.
function _M.count(mgr, key)
  local p = pool_of(mgr, key, false)
  return p and p.n or 0
end

return _M
