-- mongoose.dns: host names resolved without blocking, for cosockets and
-- the HTTP client. A name is looked up in /etc/hosts, then in a cache,
-- then asked (type A, then AAAA) of the name servers of /etc/resolv.conf
-- over a UDP cosocket: the task waits, the manager serves on meanwhile.
local bit = require("bit")
local coro = require("mongoose.coro")

local type, error, tonumber, str_char = type, error, tonumber, string.char
local str_byte, str_format, str_lower = string.byte, string.format, string.lower
local concat = table.concat
local band, rshift = bit.band, bit.rshift

local _M = {}

--- The name servers, { { "ip", port }, ... }; nil: those of
-- /etc/resolv.conf (127.0.0.1 when it names none, as the C library does).
_M.nameservers = nil
--- Milliseconds each server gets per try, and tries per server.
_M.timeout = 2000
_M.retrans = 2
-- Answers are kept for their TTL, between these bounds (seconds).
local MIN_TTL, MAX_TTL = 1, 3600

local hosts -- name -> { ip, is_v6 }
local function load_hosts(path)
  local t = {}
  local f = io.open(path or "/etc/hosts", "r")
  if f then
    for line in f:lines() do
      line = line:gsub("#.*$", "")
      local ip, names = line:match("^%s*(%S+)%s+(.+)$")
      if ip then
        local v6 = ip:find(":", 1, true) ~= nil
        for name in names:gmatch("%S+") do
          name = str_lower(name)
          -- The first line naming it wins; an IPv4 address over an IPv6 one.
          local old = t[name]
          if old == nil or (old[2] and not v6) then
            t[name] = { ip, v6 }
          end
        end
      end
    end
    f:close()
  end
  return t
end

--- Reads hosts from path (default /etc/hosts) again.
function _M.reload_hosts(path)
  hosts = load_hosts(path)
end

local function servers()
  if _M.nameservers then
    return _M.nameservers
  end
  local list = {}
  local f = io.open("/etc/resolv.conf", "r")
  if f then
    for line in f:lines() do
      local ip = line:match("^%s*nameserver%s+(%S+)")
      if ip then
        list[#list + 1] = { ip, 53 }
      end
    end
    f:close()
  end
  if #list == 0 then
    list[1] = { "127.0.0.1", 53 }
  end
  _M.nameservers = list
  return list
end

local cache = {} -- name -> { ip, is_v6, expires (ms) }

--- Forgets the cached answers.
function _M.flush()
  cache = {}
end

local query_id = 0

-- A query for name of type qtype (1 = A, 28 = AAAA), recursion desired.
local function build_query(id, name, qtype)
  local parts = { str_char(rshift(id, 8), band(id, 255), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) }
  for label in name:gmatch("[^.]+") do
    if #label > 63 then
      return nil
    end
    parts[#parts + 1] = str_char(#label) .. label
  end
  parts[#parts + 1] = str_char(0, 0, qtype, 0, 1)
  return concat(parts)
end

-- The position after the (possibly compressed) name at pos.
local function skip_name(msg, pos)
  while true do
    local len = str_byte(msg, pos)
    if len == nil then
      return nil
    elseif len == 0 then
      return pos + 1
    elseif band(len, 0xC0) == 0xC0 then
      return pos + 2
    end
    pos = pos + 1 + len
  end
end

local function u16(msg, pos)
  local a, b = str_byte(msg, pos, pos + 1)
  if not b then
    return nil
  end
  return a * 256 + b
end

-- The first address of type qtype in the answer to query id, with its TTL;
-- or nil and why not ("not found" for a name that has none).
local function parse_answer(msg, id, qtype)
  if #msg < 12 or u16(msg, 1) ~= id then
    return nil, "bad answer"
  end
  local flags = u16(msg, 3)
  local rcode = band(flags, 15)
  if rcode == 3 then
    return nil, "not found"
  elseif rcode ~= 0 then
    return nil, "server failure (rcode " .. rcode .. ")"
  end
  local qd, an = u16(msg, 5), u16(msg, 7)
  local pos = 13
  for _ = 1, qd do
    pos = skip_name(msg, pos)
    if not pos then
      return nil, "bad answer"
    end
    pos = pos + 4
  end
  for _ = 1, an do
    pos = skip_name(msg, pos)
    if not pos or pos + 10 > #msg + 1 then
      return nil, "bad answer"
    end
    local rtype = u16(msg, pos)
    local t1, t2, t3, t4 = str_byte(msg, pos + 4, pos + 7)
    local ttl = ((t1 * 256 + t2) * 256 + t3) * 256 + t4
    local rdlen = u16(msg, pos + 8)
    local rdata = pos + 10
    if rtype == qtype and qtype == 1 and rdlen == 4 then
      return str_format("%d.%d.%d.%d", str_byte(msg, rdata, rdata + 3)), ttl
    elseif rtype == qtype and qtype == 28 and rdlen == 16 then
      local groups = {}
      for i = 0, 7 do
        groups[i + 1] = str_format("%x", u16(msg, rdata + 2 * i))
      end
      return concat(groups, ":"), ttl
    end
    pos = rdata + rdlen
  end
  return nil, "not found"
end

-- Asks the servers for name (qtype), in a task. Returns ip, ttl or nil, err.
local function ask(mgr, name, qtype, timeout)
  local socket_udp = require("mongoose.socket_udp")
  local last = "no name server answered"
  for _, server in ipairs(servers()) do
    for _ = 1, _M.retrans do
      query_id = (query_id * 1103515245 + 12345 + coro.now_ms()) % 65536
      local id = query_id
      local q = build_query(id, name, qtype)
      if not q then
        return nil, "invalid name"
      end
      local sock = socket_udp.new(mgr)
      sock:settimeout(timeout and timeout > 0 and timeout < _M.timeout and timeout or _M.timeout)
      local ok, err = sock:setpeername(server[1], server[2])
      if ok then
        ok, err = sock:send(q)
      end
      while ok do
        local msg
        msg, err = sock:receive()
        if not msg then
          break
        end
        local ip, ttl = parse_answer(msg, id, qtype)
        if ip or ttl ~= "bad answer" then -- a reply to another query is skipped
          sock:close()
          return ip, ttl
        end
      end
      sock:close()
      last = server[1] .. ":" .. server[2] .. ": " .. tostring(err)
      if err == "closed" and coro.running() and coro.running().cancelled then
        return nil, "closed"
      end
    end
  end
  return nil, last
end

--- Resolves name to an IP address: returns ip, is_ipv6, or nil and an
-- error ("example.invalid could not be resolved (not found)"). Inside a
-- task the lookup waits; in the main program it polls mgr.
function _M.resolve_in_task(mgr, name, timeout)
  if type(name) ~= "string" or name == "" then
    error("name must be a non-empty string", 2)
  end
  local key = str_lower(name)
  if key == "localhost" then
    return "127.0.0.1", false
  end
  if hosts == nil then
    hosts = load_hosts()
  end
  local h = hosts[key]
  if h then
    return h[1], h[2]
  end
  local now = coro.now_ms()
  local c = cache[key]
  if c and c[3] > now then
    return c[1], c[2]
  end
  if coro.running() == nil then
    return coro.call_blocking(mgr, 2, _M.resolve_in_task, mgr, name, timeout)
  end
  local ip, ttl = ask(mgr, key, 1, timeout)
  local v6 = false
  if not ip and ttl == "not found" then
    ip, ttl = ask(mgr, key, 28, timeout)
    v6 = true
  end
  if not ip then
    return nil, name .. " could not be resolved (" .. tostring(ttl) .. ")"
  end
  ttl = tonumber(ttl) or MIN_TTL
  ttl = ttl < MIN_TTL and MIN_TTL or ttl > MAX_TTL and MAX_TTL or ttl
  cache[key] = { ip, v6, now + ttl * 1000 }
  return ip, v6
end

--- The same, from anywhere: mgr defaults to the running task's manager.
function _M.resolve(name, mgr)
  mgr = mgr or coro.current_manager()
  return _M.resolve_in_task(mgr, name)
end

return _M
