-- mongoose.core: the low-level layer. Loads the mongoose_ffi shared library
-- and declares the C ABI of include/mongoose_ffi.h that every other module
-- shares (types, manager, polling, connections). HTTP and WebSocket
-- functions are declared beside the Lua that uses them (mongoose.http).
--
-- The declarations are checked against the compiled library by
-- tests/lua/test_layout.lua (struct sizes and offsets, and every prototype
-- of the header), so they cannot drift silently.
local ffi = require("ffi")

local ffi_cdef, ffi_load, ffi_string, ffi_gc = ffi.cdef, ffi.load, ffi.string, ffi.gc
local next = next

ffi_cdef [[
enum mgffi_status {
  MGFFI_OK = 0,
  MGFFI_ERR_ARG = -1,
  MGFFI_ERR_NO_CONN = -2,
  MGFFI_ERR_LISTEN = -3,
  MGFFI_ERR_CONNECT = -4,
  MGFFI_ERR_NOMEM = -5,
  MGFFI_ERR_STATE = -6,
  MGFFI_ERR_INTERNAL = -7,
  MGFFI_ERR_FULL = -8,
  MGFFI_ERR_SPACE = -9
};

typedef struct mgffi_str {
  const char *ptr;
  size_t len;
} mgffi_str;

typedef struct mgffi_header {
  mgffi_str name;
  mgffi_str value;
} mgffi_header;

typedef struct mgffi_http_message {
  mgffi_str method;
  mgffi_str uri;
  mgffi_str query;
  mgffi_str proto;
  mgffi_str head;
  mgffi_str body;
  uint64_t content_length;
  int32_t status;
  uint32_t header_count;
  mgffi_header headers[64];
  uint32_t trailer_count;
  uint32_t reserved;
  const mgffi_header *trailers;
} mgffi_http_message;

typedef struct mgffi_addr {
  uint8_t ip[16];
  uint16_t port;
  uint8_t is_ip6;
  uint8_t reserved;
} mgffi_addr;

typedef struct mgffi_event {
  int32_t type;
  uint32_t flags;
  uint64_t conn_id;
  uint64_t listener_id;
  int64_t value;
  mgffi_str data;
  const mgffi_http_message *http;
  mgffi_addr remote;
} mgffi_event;

typedef struct mgffi_conn_info {
  uint64_t id;
  uint64_t listener_id;
  uint32_t flags;
  uint32_t event_mask;
  uint64_t send_queued;
  uint64_t recv_buffered;
  mgffi_addr local;
  mgffi_addr remote;
  int32_t fd;
  uint8_t is_closing;
  uint8_t is_draining;
  uint8_t response_pending;
  uint8_t reading_paused;
  uint8_t reading_held;
  uint8_t reserved[7];
} mgffi_conn_info;

typedef struct mgffi_manager mgffi_manager;

typedef struct mgffi_layout_entry {
  const char *type;
  const char *field;
  size_t offset;
  size_t size;
} mgffi_layout_entry;

int mgffi_abi_version(void);
const char *mgffi_mongoose_version(void);
const mgffi_layout_entry *mgffi_layout(size_t *count);
mgffi_manager *mgffi_manager_new(void);
void mgffi_manager_free(mgffi_manager *m);
int mgffi_poll(mgffi_manager *m, int timeout_ms);
const mgffi_event *mgffi_events(const mgffi_manager *m);
const char *mgffi_last_error(const mgffi_manager *m);
uint64_t mgffi_millis(void);
void mgffi_log_set_level(int level);
size_t mgffi_connection_count(const mgffi_manager *m);
size_t mgffi_connection_ids(const mgffi_manager *m, uint64_t *ids, size_t cap);
int mgffi_set_max_queue_bytes(mgffi_manager *m, uint64_t max_bytes);
int64_t mgffi_fd_limit(int raise);
int mgffi_set_limit(mgffi_manager *m, uint64_t id, int key, uint64_t value);
int mgffi_get_limit(mgffi_manager *m, uint64_t id, int key, uint64_t *value);
int mgffi_limit_info(int key, int protocol, const char **name, uint64_t *default_value, uint64_t *max_value);
int mgffi_listen(mgffi_manager *m, const char *url, size_t url_len, int protocol, uint64_t *id);
int mgffi_connect(mgffi_manager *m, const char *url, size_t url_len, int protocol, uint64_t *id);
int mgffi_set_event_mask(mgffi_manager *m, uint64_t id, uint32_t mask);
int mgffi_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len);
int mgffi_close(mgffi_manager *m, uint64_t id, int immediately);
int mgffi_pause_reading(mgffi_manager *m, uint64_t id, int paused);
int mgffi_get_conn_info(mgffi_manager *m, uint64_t id, mgffi_conn_info *info);
int mgffi_addr_format(const mgffi_addr *addr, int with_port, char *buf, size_t len);
int mgffi_signal_watch(int signo);
int mgffi_signal_take(void);
]]

local ABI_VERSION = 2

-- Finds the shared library: $MONGOOSE_FFI_LIB, then package.cpath (where
-- `cmake --install` and LUA_CPATH=build/?.so put it), then the dynamic
-- loader's search path (libmongoose_ffi.so, installed as a link; on
-- Windows mongoose_ffi.dll: LUA_CPATH=build\?.dll, or the DLL next to
-- luajit.exe, in the current folder or on PATH).
local function load_library()
  local explicit = os.getenv("MONGOOSE_FFI_LIB")
  if explicit and explicit ~= "" then
    return ffi_load(explicit)
  end
  local path = package.searchpath and package.searchpath("mongoose_ffi", package.cpath)
  if path then
    return ffi_load(path)
  end
  return ffi_load("mongoose_ffi")
end

local C = load_library()

if C.mgffi_abi_version() ~= ABI_VERSION then
  error(string.format("mongoose_ffi library has ABI version %d, these Lua modules need %d",
                      C.mgffi_abi_version(), ABI_VERSION))
end

-- Mongoose logs at debug level unless told otherwise; its errors reach Lua
-- as events, so it starts silent (mongoose.core.set_log_level changes it).
C.mgffi_log_set_level(0)

local _M = {
  C = C,
  ABI_VERSION = ABI_VERSION,
  mongoose_version = ffi_string(C.mgffi_mongoose_version()),
}

-- Event types (mgffi_event.type).
_M.EV = {
  ERROR = 0, OPEN = 1, POLL = 2, RESOLVE = 3, CONNECT = 4, ACCEPT = 5,
  TLS_HS = 6, READ = 7, WRITE = 8, CLOSE = 9, HTTP_HDRS = 10, HTTP_MSG = 11,
  WS_OPEN = 12, WS_MSG = 13, WS_CTL = 14, MQTT_CMD = 15, MQTT_MSG = 16,
  MQTT_OPEN = 17, SNTP_TIME = 18, WAKEUP = 19, MDNS_REQ = 20, MDNS_RESP = 21,
  MODBUS_REQ = 22, HTTP_BODY = 64, HTTP_BODY_END = 65, HTTP_REJECTED = 66,
  WS_FAILED = 67,
}

-- Event flags (mgffi_event.flags, mgffi_conn_info.flags).
_M.F = {
  LISTENER = 1, CLIENT = 2, ACCEPTED = 4, UDP = 8, WEBSOCKET = 16, TLS = 32,
  STREAMING = 64,
}

_M.PROTO = { RAW = 0, HTTP = 1 }

_M.OK = 0
_M.ERR_NO_CONN = -2

--- A class table: methods go in it, instances get it as metatable; its
-- __name shows in error messages and tostring(obj) gives "name id".
function _M.class(name)
  local class = { __name = name }
  class.__index = class
  class.__tostring = function(obj)
    return name .. (obj.id ~= nil and " " .. tostring(obj.id) or "")
  end
  return class
end

-- Event mask bit for an event type below 32.
function _M.mask(...)
  local bit = require("bit")
  local m = 0
  for i = 1, select("#", ...) do
    m = bit.bor(m, bit.lshift(1, (select(i, ...))))
  end
  return m
end

-- Status codes (mgffi_status).
_M.ERR = {
  ARG = -1, NO_CONN = -2, LISTEN = -3, CONNECT = -4, NOMEM = -5, STATE = -6,
  INTERNAL = -7, FULL = -8, SPACE = -9,
}

---------------------------------------------------------------------------
-- Limits: the library describes them (mgffi_limit_info), so the names,
-- maxima and defaults here always match the build.
---------------------------------------------------------------------------

-- What each limit counts, for its error message.
local LIMIT_UNITS = {
  max_body = "bytes", stream_threshold = "bytes", max_send_queue = "bytes",
  max_message = "bytes", max_header_size = "bytes", min_body_rate = "bytes per second",
  idle_timeout = "milliseconds", request_timeout = "milliseconds",
  send_timeout = "milliseconds", ws_idle_timeout = "milliseconds",
  message_timeout = "milliseconds", control_rate = "frames per second", fragment_size = "bytes",
}

local LIMITS = {}
do
  local name_out = ffi.new("const char *[1]")
  local value_out, max_out = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
  local key = 0
  while C.mgffi_limit_info(key, 1, name_out, value_out, max_out) == 0 do
    local info = { key = key, max = tonumber(max_out[0]), http_default = tonumber(value_out[0]) }
    C.mgffi_limit_info(key, 0, nil, value_out, nil)
    info.raw_default = tonumber(value_out[0])
    info.name = ffi_string(name_out[0])
    info.unit = LIMIT_UNITS[info.name]
    LIMITS[info.name] = info
    key = key + 1
  end
end
--- Every limit by its option name: key, max, http_default, raw_default.
_M.LIMITS = LIMITS

--- The option names of the limits each kind of listener or connection takes.
_M.LIMIT_SETS = {
  http = { "max_connections", "max_connections_per_ip", "idle_timeout", "request_timeout",
           "min_body_rate", "send_timeout", "max_header_size", "max_headers", "max_body",
           "stream_threshold", "max_send_queue" },
  websocket = { "max_message", "ws_idle_timeout", "message_timeout", "control_rate",
                "fragment_size", "max_send_queue", "send_timeout" },
  tcp_listener = { "max_connections", "max_connections_per_ip", "idle_timeout", "send_timeout",
                   "max_send_queue" },
  tcp = { "idle_timeout", "send_timeout", "max_send_queue" },
}

--- Raises (at level, counted from the caller of check_limits) unless each
-- limit of set in opts is nil or an integer from 0 (none) to its maximum.
-- Returns whether any is set.
function _M.check_limits(opts, set, level)
  local any = false
  for _, name in ipairs(_M.LIMIT_SETS[set]) do
    local v = opts[name]
    if v ~= nil then
      local info = LIMITS[name]
      if not _M.is_integer_in(v, 0, info.max) then
        local max = info.max == 2 ^ 53 and "2^53" or tostring(info.max)
        error(name .. " must be an integer " .. (info.unit and "number of " .. info.unit .. " " or "")
              .. "from 0 (none) to " .. max, (level or 1) + 1)
      end
      any = true
    end
  end
  return any
end

--- Sets the limits of set given in opts on connection or listener id
-- (checked with check_limits first). Returns true, or nil and an error.
function _M.apply_limits(m, id, opts, set)
  for _, name in ipairs(_M.LIMIT_SETS[set]) do
    local v = opts[name]
    if v ~= nil and C.mgffi_set_limit(m, id, LIMITS[name].key, v) ~= 0 then
      return nil, ffi_string(C.mgffi_last_error(m))
    end
  end
  return true
end

--- The process's descriptor limit, raised to the hard limit first when
-- raise is true (nil where the system has none).
function _M.fd_limit(raise)
  local n = tonumber(C.mgffi_fd_limit(raise and 1 or 0))
  return n >= 0 and n or nil
end

-- Creates a manager; the cdata frees it when collected (or call free()).
function _M.new_manager()
  local m = C.mgffi_manager_new()
  if m == nil then
    return nil, "out of memory"
  end
  return ffi_gc(m, C.mgffi_manager_free)
end

-- Frees a manager now (idempotent with the garbage collector).
function _M.free_manager(m)
  ffi_gc(m, nil)
  C.mgffi_manager_free(m)
end

function _M.last_error(m)
  return ffi_string(C.mgffi_last_error(m))
end

-- A Lua string for an mgffi_str view (copies the bytes).
function _M.str(s)
  if s.len == 0 then
    return ""
  end
  return ffi_string(s.ptr, s.len)
end

local addr_buf = ffi.new("char[64]")

-- "1.2.3.4:80" / "[::1]:80" (with_port) or the bare IP, for an mgffi_addr.
function _M.format_addr(addr, with_port)
  local n = C.mgffi_addr_format(addr, with_port and 1 or 0, addr_buf, 64)
  if n < 0 then
    return ""
  end
  return ffi_string(addr_buf, n)
end

--- A peer's address as ("1.2.3.4:5678" or "[::1]:5678", its IP, its port).
function _M.peer_strings(addr)
  return _M.format_addr(addr, true), _M.format_addr(addr, false), addr.port
end

-- Scratch buffers shared by every module (one call at a time: LuaJIT runs
-- one coroutine at a time, and none of these is kept across a yield).
local info_buf = ffi.new("mgffi_conn_info")

--- The shared mgffi_conn_info filled for connection id, or nil when it is
-- gone. Valid until the next call.
function _M.conn_info(m, id)
  if C.mgffi_get_conn_info(m, id, info_buf) ~= 0 then
    return nil
  end
  return info_buf
end

--- Bytes queued for sending on connection id (0 once it is gone).
function _M.send_queued(m, id)
  if C.mgffi_get_conn_info(m, id, info_buf) ~= 0 then
    return 0
  end
  return tonumber(info_buf.send_queued)
end

-- Methods shared by the high-level objects that stand for one listening or
-- UDP socket (HTTP and TCP listeners, UDP sockets); they use self.mgr,
-- self.id and self.closed.
local Endpoint = {}

--- Stops listening (UDP: closes the socket). Connections already accepted
-- are served to the end. Idempotent.
function Endpoint:close()
  if self.closed then
    return true
  end
  self.closed = true
  if not self.mgr.closed then
    C.mgffi_close(self.mgr.cm, self.id, 1)
  end
  return true
end

--- The bound address ("127.0.0.1:8000", "[::1]:8000") and port (useful
-- after listening on port 0), or nil and an error once closed.
function Endpoint:local_addr()
  local info = self.mgr.cm ~= nil and _M.conn_info(self.mgr.cm, self.id)
  if not info then
    return nil, self.mgr:last_error()
  end
  local addr = info["local"]
  return _M.format_addr(addr, true), addr.port
end

--- The bound port, or nil once closed.
function Endpoint:port()
  local addr, port = self:local_addr()
  if not addr then
    return nil
  end
  return port
end

--- nil and the error of a failed send on a connection: closed_text
-- (default "closed") once it is gone, "send queue full" while its queue
-- is at max_send_queue, else the C layer's message.
function _M.send_failure(mgr, rc, closed_text)
  if rc == _M.ERR.NO_CONN then
    return nil, closed_text or "closed"
  elseif rc == _M.ERR.FULL then
    return nil, "send queue full"
  end
  return nil, mgr:last_error()
end

--- true when rc, the status of a send on a connection, is 0; else what
-- send_failure gives.
function _M.send_result(mgr, rc, closed_text)
  if rc == 0 then
    return true
  end
  return _M.send_failure(mgr, rc, closed_text)
end

-- Methods shared by the objects that stand for one connection (TCP
-- connections, WebSockets); they use self.mgr, self.id and self.closed.
local Connection = {}

--- Stops reading from the peer (what it sends waits in the kernel, then
-- TCP pushes back); resume() goes on. No CPU is spent meanwhile.
local function set_paused(self, paused)
  if self.closed then
    return nil, "closed"
  end
  C.mgffi_pause_reading(self.mgr.cm, self.id, paused and 1 or 0)
  self.paused = paused
  return true
end

function Connection:pause()
  return set_paused(self, true)
end

function Connection:resume()
  return set_paused(self, false)
end

--- Bytes queued for sending (backpressure); 0 once closed.
function Connection:send_queued()
  if self.closed then
    return 0
  end
  return _M.send_queued(self.mgr.cm, self.id)
end

--- obj:add_close_hook(fn) for objects that end once (WebSockets, event
-- streams): fn(obj) runs when it ends (run_close_hooks), once, in the
-- order added; nil, "closed" once obj.closed.
function _M.add_close_hook(obj, fn)
  if type(fn) ~= "function" then
    error("fn must be a function", 2)
  end
  if obj.closed then
    return nil, "closed"
  end
  local hooks = obj.close_hooks
  if not hooks then
    hooks = {}
    obj.close_hooks = hooks
  end
  hooks[#hooks + 1] = fn
  return true
end

--- Runs the close hooks of obj (each protected, logged as what).
function _M.run_close_hooks(obj, mgr, what)
  local hooks = obj.close_hooks
  if hooks then
    obj.close_hooks = nil
    for i = 1, #hooks do
      mgr:protected_call(what, hooks[i], obj)
    end
  end
end

function _M.add_connection_methods(class) -- pause, resume, send_queued
  for name, fn in pairs(Connection) do
    class[name] = fn
  end
end

--- opts, or a new empty table when it is nil; raises "opts must be a
-- table" otherwise, at level (as error(msg, level) in the caller).
function _M.opt_table(opts, level)
  if opts == nil then
    return {}
  elseif type(opts) ~= "table" then
    error("opts must be a table", level + 1)
  end
  return opts
end

--- Raises "<name> must be a <tname>" (at level, as error(msg, level) in
-- the caller) unless opts[name] is nil or of type tname.
function _M.check_option(opts, name, tname, level)
  local v = opts[name]
  if v ~= nil and type(v) ~= tname then
    error(name .. " must be a " .. tname, level + 1)
  end
end

--- The number of keys of table t (walked with next(): see copy_table).
function _M.count(t)
  local n, k = 0, next(t)
  while k ~= nil do
    n = n + 1
    k = next(t, k)
  end
  return n
end

--- True when v is an integer number from min to max (NaN is not).
function _M.is_integer_in(v, min, max)
  return type(v) == "number" and v >= min and v <= max and v % 1 == 0
end

--- The text of an error value, also when its __tostring raises.
function _M.error_text(err)
  local ok, text = pcall(tostring, err)
  return ok and text or "(an error value that cannot be turned into a string)"
end

--- A shallow copy of t (a new table; nil gives an empty one). Walks with
-- next(), not pairs(): on request paths the pairs() loops of LuaJIT 2.1
-- builds before mid-2022 (Debian bookworm's among them) can hand the loop
-- the iterator's own slots once a trace is blacklisted.
function _M.copy_table(t)
  local copy = {}
  if t ~= nil then
    local k, v = next(t)
    while k ~= nil do
      copy[k] = v
      k, v = next(t, k)
    end
  end
  return copy
end

--- Adds v under key k of t: the first value as it is, the next ones in a
-- list of all ({ first, second, ... }), as repeated query or form fields.
function _M.add_value(t, k, v)
  local old = t[k]
  if old == nil then
    t[k] = v
  elseif type(old) == "table" then
    old[#old + 1] = v
  else
    t[k] = { old, v }
  end
end

--- Gives class the endpoint methods (close, local_addr, port).
function _M.add_endpoint_methods(class)
  for name, fn in pairs(Endpoint) do
    class[name] = fn
  end
end

function _M.millis()
  return tonumber(C.mgffi_millis())
end

local LOG_LEVELS = { none = 0, error = 1, info = 2, debug = 3, verbose = 4 }
_M.LOG_LEVELS = LOG_LEVELS

-- Mongoose's own log level: "none", "error", "info", "debug", "verbose".
function _M.set_log_level(level)
  local n = LOG_LEVELS[level]
  if not n then
    error("unknown log level: " .. tostring(level), 2)
  end
  C.mgffi_log_set_level(n)
end

return _M
