-- mongoose.websocket: the WebSocket object, the same for both sides (its
-- events come from the manager's queue), and the client side (ws_connect).
-- The server side (ws_listen, res:upgrade, broadcast) is
-- mongoose.websocket_server. The C layer frames and checks every message
-- (RFC 6455, RFC 7692); what reaches Lua is whole, valid messages and
-- control frames.
local ffi = require("ffi")
local bit = require("bit")
local core = require("mongoose.core")
local headers = require("mongoose.headers")
local coro = require("mongoose.coro")

ffi.cdef [[
int mgffi_ws_connect(mgffi_manager *m, const char *url, size_t url_len, const char *extra_headers, size_t extra_len, uint64_t *id);
int mgffi_ws_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op);
int mgffi_ws_send_frame(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op, int fin);
typedef struct mgffi_ws_deflate {
  uint32_t enabled;
  int32_t level;
  uint32_t context_takeover;
  uint32_t max_window_bits;
  uint64_t min_size;
} mgffi_ws_deflate;
int mgffi_ws_set_deflate(mgffi_manager *m, uint64_t id, const mgffi_ws_deflate *config);
]]

local C, EV, ffi_string = core.C, core.EV, ffi.string
local band, type, error, tostring = bit.band, type, error, tostring
local tonumber, setmetatable, pairs, str_char = tonumber, setmetatable, pairs, string.char
local str_byte, floor = string.byte, math.floor

local C_ws_send = C.mgffi_ws_send
local C_ws_send_frame = C.mgffi_ws_send_frame
local deflate_buf = ffi.new("mgffi_ws_deflate")

local OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING = 1, 2, 8, 9
local CONTROL_NAMES = { [8] = "close", [9] = "ping", [10] = "pong" }

local _M = {}

local WebSocket = core.class("mongoose.WebSocket")
_M.WebSocket = WebSocket

local HANDLERS = { "on_open", "on_message", "on_close", "on_control", "on_error" }

-- Raises (at level) unless every on_* option is a function or nil.
local function check_handlers(opts, level)
  for _, name in ipairs(HANDLERS) do
    core.check_option(opts, name, "function", level + 1)
  end
end

-- Raises (at level) unless the WebSocket options of opts are valid (limits
-- included); called before anything is opened, so that a bad value leaves
-- nothing behind.
local DEFLATE_KEYS = { level = true, context_takeover = true, max_window_bits = true, min_size = true }

-- Raises (at level) unless opts.deflate is nil, a boolean or a table of
-- known settings.
local function check_deflate(d, level)
  if d == nil or type(d) == "boolean" then
    return
  end
  if type(d) ~= "table" then
    error("deflate must be true, false or a table", level + 1)
  end
  for k in pairs(d) do
    if not DEFLATE_KEYS[k] then
      error("unknown deflate setting '" .. tostring(k) .. "'", level + 1)
    end
  end
  if d.level ~= nil and not core.is_integer_in(d.level, 0, 9) then
    error("deflate.level must be an integer from 0 to 9", level + 1)
  end
  if d.max_window_bits ~= nil and not core.is_integer_in(d.max_window_bits, 9, 15) then
    error("deflate.max_window_bits must be an integer from 9 to 15", level + 1)
  end
  if d.min_size ~= nil and not core.is_integer_in(d.min_size, 0, 2 ^ 53) then
    error("deflate.min_size must be a number of bytes", level + 1)
  end
  if d.context_takeover ~= nil and type(d.context_takeover) ~= "boolean" then
    error("deflate.context_takeover must be a boolean", level + 1)
  end
end

local function check_options(opts, level)
  check_handlers(opts, level + 1)
  core.check_limits(opts, "websocket", level + 1)
  check_deflate(opts.deflate, level + 1)
end

-- Sets the permessage-deflate wish of connection or listener id (when
-- opts.deflate is given). Returns true, or nil and an error.
local function apply_deflate(cm, id, d)
  if d == nil then
    return true
  end
  local t = type(d) == "table" and d or {}
  deflate_buf.enabled = d and 1 or 0
  deflate_buf.level = t.level or 1
  deflate_buf.context_takeover = t.context_takeover and 1 or 0
  deflate_buf.max_window_bits = t.max_window_bits or 15
  deflate_buf.min_size = t.min_size or 64
  if C.mgffi_ws_set_deflate(cm, id, deflate_buf) ~= 0 then
    return nil, ffi_string(C.mgffi_last_error(cm))
  end
  return true
end

-- Fields a WebSocket stores only once they change (an idle WebSocket holds
-- few fields: thousands of them are the common case).
WebSocket.open = false
WebSocket.closed = false
WebSocket.compressed = false
WebSocket.extensions = ""

-- The fields every WebSocket has (ws.mgr, ws.id, ws.handlers,
-- ws.listener, ws.open) live in its array part, made with the table in
-- one allocation of about 117 bytes; by name they would need a hash part
-- of eight nodes (261 bytes in all). __index and __newindex map the names
-- to the slots, so that they read and write as fields; this module uses
-- the slots. An idle WebSocket that was never asked anything is that
-- one allocation: fewer bytes for every garbage collection to visit, and
-- for the heap to keep in reserve.
local MGR, ID, HANDLERS_SLOT, LISTENER, OPEN = 1, 2, 3, 4, 5
local SLOT = { mgr = MGR, id = ID, handlers = HANDLERS_SLOT, listener = LISTENER, open = OPEN }

-- Fields made on first read (ws.state, and ws.request on the server
-- side, see websocket_server.lua).
local LAZY = {}
function LAZY.state()
  return {}
end
local rawget, rawset, getmetatable, next = rawget, rawset, getmetatable, next

-- The owner of a sleeping WebSocket (see sleep below); one per listener,
-- handlers and handshake outcome, shared by all of them.
local Sleeper = {}
Sleeper.__index = Sleeper
_M.Sleeper = Sleeper

-- A sleeping WebSocket that is given a field of its own (by the library,
-- as ws.closing, or by the application) owns its connection again.
local function pin(self)
  local owners = rawget(self, MGR).owners
  local id = rawget(self, ID)
  if getmetatable(owners[id]) == Sleeper then
    owners[id] = self
  end
end

function WebSocket.__index(self, k)
  local slot = SLOT[k]
  if slot ~= nil then
    return rawget(self, slot)
  end
  local v = WebSocket[k]
  if v == nil then
    local make = LAZY[k]
    if make then
      v = make(self)
      rawset(self, k, v)
      pin(self)
    end
  end
  return v
end

function WebSocket.__newindex(self, k, v)
  rawset(self, SLOT[k] or k, v)
  pin(self)
end

-- The handlers stay in opts (shared by a listener's WebSockets); one set
-- on the WebSocket itself (ws.on_message = fn) takes precedence.
local table_new = require("table.new")
local function new_ws(mgr, id, opts)
  -- table.new: the array part is made with the table, in its allocation
  -- (a constructor would allocate it apart: 165 bytes in all, not 117).
  local ws = table_new(5, 0)
  ws[MGR], ws[ID], ws[HANDLERS_SLOT], ws[OPEN] = mgr, id, opts, false
  return setmetatable(ws, WebSocket)
end

---------------------------------------------------------------------------
-- Sleeping WebSockets. Once on_open has run, an open server WebSocket
-- that holds nothing but what all of its listener's WebSockets with the
-- same handlers and handshake hold (no field of its own, of the
-- application's or the library's: no task waiting in receive(), no close
-- hook, no ws.state) goes to sleep: mgr.owners names a shared Sleeper for
-- it, and the object lives on only while something else refers to it
-- (mgr.ws_awake is weak-valued). The next event of the connection finds
-- it there, or makes it again, equal in every field. Thousands of idle
-- WebSockets are then as many entries of two tables, not as many objects
-- for every garbage collection to mark and sweep.
---------------------------------------------------------------------------

-- The fields a sleeper keeps for its WebSockets (the handshake's outcome);
-- a WebSocket with any other in its hash part stays awake.
local SLEEPER_FIELDS = { "compressed", "extensions", "protocol" }
local SLEEPER_KEYS = {}
for _, k in ipairs(SLEEPER_FIELDS) do
  SLEEPER_KEYS[k] = true
end

local function awake_of(mgr)
  local awake = mgr.ws_awake
  if awake == nil then
    awake = setmetatable({}, { __mode = "v" })
    mgr.ws_awake = awake
  end
  return awake
end

--- The WebSocket of connection id, which sleeper self stands for.
function Sleeper:wake(id)
  local mgr = self.mgr
  local awake = awake_of(mgr)
  local ws = awake[id]
  if ws == nil then
    ws = new_ws(mgr, id, self.handlers)
    rawset(ws, LISTENER, self.listener)
    rawset(ws, OPEN, true)
    for i = 1, #SLEEPER_FIELDS do
      local k = SLEEPER_FIELDS[i]
      local v = self[k]
      if v ~= WebSocket[k] then -- stored only once changed, as on_event does
        rawset(ws, k, v)
      end
    end
    awake[id] = ws
  end
  return ws
end

function Sleeper:on_event(ev, id)
  local ws = self:wake(id)
  self.mgr.dispatch_owner = ws -- its handlers are called directly (Manager:event_call)
  return ws:on_event(ev, id)
end

local MAX_HANDLER_SETS = 16 -- per listener: sleepers are kept as long as it

local function sleeper_for(self, l)
  local sets = l.ws_sleepers
  if sets == nil then
    sets = { n = 0 }
    l.ws_sleepers = sets
  end
  local handlers = self[HANDLERS_SLOT]
  local set = sets[handlers]
  if set == nil then
    if sets.n >= MAX_HANDLER_SETS then
      return nil -- a new opts table per res:upgrade: those stay awake
    end
    set = {}
    sets[handlers], sets.n = set, sets.n + 1
  end
  local compressed, extensions, protocol = self.compressed, self.extensions, self.protocol
  local key = (compressed and "1" or "0") .. (protocol or "") .. "\n" .. extensions
  local s = set[key]
  if s == nil then
    s = setmetatable({ mgr = self[MGR], handlers = handlers, listener = l }, Sleeper)
    for _, k in ipairs(SLEEPER_FIELDS) do
      s[k] = self[k]
    end
    set[key] = s
  end
  return s
end

-- Puts the open server WebSocket self (connection id) to sleep if it holds
-- nothing of its own.
local function sleep(self, id)
  local l, mgr = self[LISTENER], self[MGR]
  if l == nil or not self[OPEN] or mgr.owners[id] ~= self or rawget(self, 0) ~= nil then
    return
  end
  local k = next(self, OPEN)
  while k ~= nil do
    if not SLEEPER_KEYS[k] then
      return
    end
    k = next(self, k)
  end
  local s = sleeper_for(self, l)
  if s ~= nil then
    awake_of(mgr)[id] = self
    mgr.owners[id] = s
  end
end

-- The WebSocket that owner (a value of mgr.owners, for connection id)
-- stands for, or nil.
function _M.object_of(owner, id)
  local mt = getmetatable(owner)
  if mt == Sleeper then
    return owner:wake(id)
  end
  return mt == WebSocket and owner or nil
end

local function handler_of(self, name)
  return self[name] or self[HANDLERS_SLOT][name]
end

local WHAT = {} -- "WebSocket on_message", ... (made once per name)

local function call(self, name, a, b)
  local fn = handler_of(self, name)
  if fn then
    local what = WHAT[name]
    if what == nil then
      what = "WebSocket " .. name
      WHAT[name] = what
    end
    self[MGR]:event_call(self, what, fn, self, a, b)
  end
end

local function opcode(kind, level)
  if kind == nil or kind == "text" then
    return OP_TEXT
  elseif kind == "binary" then
    return OP_BINARY
  end
  error("kind must be \"text\" or \"binary\"", level + 1)
end

--- Sends a message: kind "text" (default) or "binary". Returns true, or nil
-- and an error ("closed" once the connection is gone, "send queue full"
-- while max_send_queue bytes wait). A client may send before the handshake
-- completes: messages wait for it.
function WebSocket:send(data, kind)
  if type(data) ~= "string" then
    error("data must be a string", 2)
  end
  local op = opcode(kind, 2)
  if self.closed or self.closing then
    return nil, "closed"
  end
  if self.streaming then
    error("a message is being streamed: finish it first", 2)
  end
  if not self[OPEN] then
    local q = self.queued
    if not q then
      q = {}
      self.queued = q
    end
    q[#q + 1] = { data, op }
    return true
  end
  return core.send_result(self[MGR], C_ws_send(self[MGR].cm, self[ID], data, #data, op))
end

--- Sends a ping with optional data (at most 125 bytes).
function WebSocket:ping(data)
  data = data or ""
  if type(data) ~= "string" or #data > 125 then
    error("ping data must be a string of at most 125 bytes", 2)
  end
  if self.closed or self.closing or not self[OPEN] then
    return nil, "closed"
  end
  if C_ws_send(self[MGR].cm, self[ID], data, #data, OP_PING) ~= 0 then
    return nil, "closed"
  end
  return true
end

-- The close codes an endpoint may send (RFC 6455 7.4.1, 7.4.2): 1004-1006
-- and 1015 are reserved (never sent), 1016-2999 are for future revisions
-- of the protocol; 3000-4999 are for libraries and applications.
local function sendable_close_code(code)
  if type(code) ~= "number" or code % 1 ~= 0 then
    return false
  end
  return (code >= 1000 and code <= 1003) or (code >= 1007 and code <= 1014)
    or (code >= 3000 and code <= 4999)
end

--- Starts the closing handshake with code (default 1000) and reason, then
-- closes once queued data is sent. on_close follows.
function WebSocket:close(code, reason)
  code = code or 1000
  reason = reason or ""
  if not sendable_close_code(code) then
    error("code must be an integer in 1000-1003, 1007-1014 or 3000-4999", 2)
  end
  if type(reason) ~= "string" or #reason > 123 then
    error("reason must be a string of at most 123 bytes", 2)
  end
  if self.closed or self.closing then
    return true
  end
  self.closing = true
  self.local_close_code, self.local_close_reason = code, reason
  if self[OPEN] then
    local payload = str_char(floor(code / 256), code % 256) .. reason
    C_ws_send(self[MGR].cm, self[ID], payload, #payload, OP_CLOSE)
  end
  C.mgffi_close(self[MGR].cm, self[ID], 0)
  return true
end

core.add_connection_methods(WebSocket) -- pause, resume, send_queued

--- ws:add_close_hook(fn): fn(ws) runs when the connection closes, before
-- on_close, for code that keeps WebSockets in its own tables
-- (mongoose.web.groups frees them).
WebSocket.add_close_hook = core.add_close_hook

---------------------------------------------------------------------------
-- Streamed messages: sent in fragments as they are produced
---------------------------------------------------------------------------

local Stream = core.class("mongoose.WebSocket.Stream")
Stream.__index = Stream

--- Starts a message sent in pieces (kind "text" or "binary"): returns a
-- stream with write(chunk) and finish([chunk]). While it is open, ws:send
-- refuses other messages; pings and close may go in between.
function WebSocket:stream(kind)
  local op = opcode(kind, 2)
  if self.closed or self.closing or not self[OPEN] then
    return nil, "closed"
  end
  if self.streaming then
    error("a message is being streamed already", 2)
  end
  self.streaming = true
  return setmetatable({ ws = self, op = op, started = false, done = false }, Stream)
end

local function stream_frame(self, chunk, fin)
  local ws = self.ws
  if ws.closed or ws.closing then
    return nil, "closed"
  end
  local op = self.started and 0 or self.op
  local rc = C_ws_send_frame(ws[MGR].cm, ws[ID], chunk, #chunk, op, fin and 1 or 0)
  if rc ~= 0 then
    return core.send_failure(ws[MGR], rc)
  end
  self.started = true
  if fin then
    self.done = true
    ws.streaming = false
  end
  return true
end

local function stream_piece(self, chunk, fin)
  if type(chunk) ~= "string" then
    error("chunk must be a string", 3)
  end
  if self.done then
    error("the message is finished", 3)
  end
  local ok, err = stream_frame(self, chunk, fin)
  return ok, err -- not a tail call: the errors above count this frame
end

--- Sends chunk as the next fragment. nil, "send queue full" while
-- max_send_queue bytes wait (the chunk is not sent: try again later).
function Stream:write(chunk)
  local ok, err = stream_piece(self, chunk, false)
  return ok, err
end

--- Ends the message (with a last chunk, possibly empty).
function Stream:finish(chunk)
  local ok, err = stream_piece(self, chunk or "", true)
  return ok, err
end

local function flush_queued(self)
  local q = self.queued
  if not q then
    return
  end
  self.queued = nil
  for i = 1, #q do
    C_ws_send(self[MGR].cm, self[ID], q[i][1], #q[i][1], q[i][2])
  end
end

---------------------------------------------------------------------------
-- ws:receive(): messages waited for in a task (WebSockets without
-- on_message). Once receive() has been called, messages queue while no
-- task waits, and past MAX_QUEUED the connection is not read until the
-- queue is half empty (before, as without on_message, they are dropped).
---------------------------------------------------------------------------

local MAX_QUEUED = 64

local function queue_message(self, data, kind)
  if not self.receiving then
    return
  end
  local task = self.receiver
  if task then
    self.receiver = nil
    return coro.wake(task, self, data, kind)
  end
  local q = self.inbox
  if not q then
    q = { head = 1, tail = 0 }
    self.inbox = q
  end
  local tail = q.tail + 1
  q[2 * tail - 1], q[2 * tail] = data, kind
  q.tail = tail
  if tail - q.head + 1 > MAX_QUEUED and not self.inbox_paused then
    self.inbox_paused = true
    C.mgffi_pause_reading(self[MGR].cm, self[ID], 1)
  end
end

function WebSocket:abort_wait(task, why)
  self.receiver = nil
  return nil, why
end

--- Waits (in a task) for the next message, up to timeout_ms if given.
-- Returns data and its kind ("text" or "binary"), or nil and "closed" or
-- "timeout". Only for WebSockets without on_message.
function WebSocket:receive(timeout_ms)
  if handler_of(self, "on_message") then
    error("receive() is for WebSockets without an on_message handler", 2)
  end
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms < 0) then
    error("timeout_ms must be a non-negative number", 2)
  end
  self.receiving = true
  local q = self.inbox
  if q and q.head <= q.tail then
    local head = q.head
    local data, kind = q[2 * head - 1], q[2 * head]
    q[2 * head - 1], q[2 * head] = nil, nil
    q.head = head + 1
    if self.inbox_paused and q.tail - q.head < MAX_QUEUED / 2 then
      self.inbox_paused = false
      C.mgffi_pause_reading(self[MGR].cm, self[ID], 0)
    end
    return data, kind
  end
  if self.closed then
    return nil, "closed"
  end
  local task = coro.running()
  if task == nil then
    return coro.call_blocking(self[MGR], 2, WebSocket.receive, self, timeout_ms)
  end
  if self.receiver then
    return nil, "another task is receiving"
  end
  self.receiver = task
  return coro.wait(task, self, timeout_ms)
end

function WebSocket:on_event(ev, id)
  local t = ev.type
  if t == EV.WS_MSG then
    local data = ev.data.len > 0 and ffi_string(ev.data.ptr, ev.data.len) or ""
    local binary = band(tonumber(ev.value), 15) == OP_BINARY
    if handler_of(self, "on_message") == nil then
      return queue_message(self, data, binary and "binary" or "text")
    end
    call(self, "on_message", data, binary)
  elseif t == EV.WS_OPEN then
    self[OPEN] = true
    if tonumber(ev.value) == 1 then
      self.compressed = true
    end
    if self.is_client and ev.http ~= nil then
      local resp = { status = ev.http.status, headers = headers.of_message(ev.http) }
      self.protocol = resp.headers["sec-websocket-protocol"]
      self.extensions = resp.headers["sec-websocket-extensions"]
      self.response = resp
    elseif ev.data.len > 0 then
      self.extensions = ffi_string(ev.data.ptr, ev.data.len)
    end
    call(self, "on_open", self.response)
    if not self.closing then
      flush_queued(self)
      sleep(self, id)
    end
  elseif t == EV.WS_CTL then
    local op = band(tonumber(ev.value), 15)
    local data = ev.data.len > 0 and ffi_string(ev.data.ptr, ev.data.len) or ""
    if op == OP_CLOSE then
      if #data >= 2 then
        local hi, lo = str_byte(data, 1, 2)
        self.close_code, self.close_reason = hi * 256 + lo, data:sub(3)
      else
        self.close_code, self.close_reason = 1005, ""
      end
      self.closing = true
    end
    call(self, "on_control", CONTROL_NAMES[op] or tostring(op), data)
  elseif t == EV.WS_FAILED then
    -- The C layer sent this close frame (a protocol error, a message too
    -- big, a timeout) and closes.
    local reason = ev.data.len > 0 and ffi_string(ev.data.ptr, ev.data.len) or ""
    self.local_close_code, self.local_close_reason = tonumber(ev.value), reason
    self.closing = true
    self[MGR]:log("info", "WebSocket " .. id .. " closed with " .. tonumber(ev.value) .. ": " .. reason)
  elseif t == EV.ERROR then
    self.error = ffi_string(ev.data.ptr, ev.data.len)
    call(self, "on_error", self.error)
  elseif t == EV.CLOSE then
    if ev.data.len > 0 and not self.is_client and rawget(self, "request") == nil then
      -- The upgrade request's head, from C: ws.request can still be made.
      self._head = ffi_string(ev.data.ptr, ev.data.len)
      self._addr, self._ip, self._port = core.peer_strings(ev.remote)
    end
    self.closed = true
    self[OPEN] = false
    local awake = self[MGR].ws_awake
    if awake ~= nil then
      awake[id] = nil
    end
    core.run_close_hooks(self, self[MGR], "WebSocket close hook")
    local code, reason = self.close_code, self.close_reason
    if code == nil then
      code = self.local_close_code or 1006
      reason = self.local_close_reason or self.error or ""
    end
    self.close_code, self.close_reason = code, reason
    local receiver = self.receiver
    if receiver then
      self.receiver = nil
      coro.wake(receiver, self, nil, "closed")
    end
    call(self, "on_close", code, reason)
  end
end

---------------------------------------------------------------------------
-- Client side
---------------------------------------------------------------------------

--- Connects to a WebSocket server at url ("ws://host:port/path"). opts:
-- headers, protocols (offered subprotocols), the WebSocket limits, tls,
-- and the on_* handlers. Returns the WebSocket (open once on_open runs),
-- or nil, err.
function _M.connect(mgr, url, opts, level)
  level = level or 3
  if type(url) ~= "string" then
    error("url must be a string", level)
  end
  opts = core.opt_table(opts, level)
  check_options(opts, level)
  local scheme = url:match("^(%a[%w+.-]*)://")
  if not scheme or (scheme:lower() ~= "ws" and scheme:lower() ~= "wss") then
    return nil, "ws_connect needs a ws:// or wss:// URL, not " .. url
  end
  local extra = core.copy_table(opts.headers) -- the caller's table may be shared
  if opts.protocols then
    extra["Sec-WebSocket-Protocol"] = table.concat(opts.protocols, ", ")
  end
  local block = headers.build(extra, nil, level + 1)
  local tls = require("mongoose.tls")
  tls.check(opts.tls, level)
  local id, err = mgr:open_connection("ws", url, nil, opts.tls, block)
  if not id then
    return nil, err
  end
  local ok
  ok, err = core.apply_limits(mgr.cm, id, opts, "websocket")
  if ok then
    ok, err = apply_deflate(mgr.cm, id, opts.deflate)
  end
  if not ok then
    C.mgffi_close(mgr.cm, id, 1)
    return nil, err
  end
  local ws = new_ws(mgr, id, opts)
  ws.is_client = true
  mgr:own(id, ws)
  return ws
end

-- For mongoose.websocket_server (the server side: listen, upgrade,
-- broadcast), which shares the options, the object and its handlers.
_M.check_options = check_options
_M.apply_deflate = apply_deflate
_M.new_ws = new_ws
_M.LAZY = LAZY
_M.OPEN, _M.LISTENER = OPEN, LISTENER
_M.opcode = opcode

--- Sends to the WebSocket with connection id from anywhere in the program.
function _M.send(mgr, id, data, kind)
  local ws = _M.object_of(mgr.owners[id], id)
  if ws == nil then
    return nil, "no WebSocket connection with id " .. tostring(id)
  end
  return ws:send(data, kind)
end

return _M
