-- mongoose.ngx: an `ngx` table with the parts of OpenResty's API that
-- libraries written for ngx_lua use outside the request itself: cosockets
-- (ngx.socket.tcp/udp), ngx.sleep, ngx.null, time, logging, URI and
-- base64 coding, digests, light threads, timers, semaphores, ngx.re.
--
--   require("mongoose.ngx")            -- installs the global ngx if there is none
--   local redis = require("nginx.redis") -- Debian's lua-nginx-redis, unmodified
--
-- Times are in seconds, as in OpenResty (ngx.sleep(0.5), timer.at(1, fn));
-- socket timeouts in milliseconds, as in OpenResty. Everything that waits
-- must run in a task (a handler, callback, timer, ngx.thread.spawn) or in
-- the main program (which then polls the manager).
local ffi = require("ffi")
local bit = require("bit")
local core = require("mongoose.core")
local coro = require("mongoose.coro")
local socket = require("mongoose.socket")
local thread = require("mongoose.thread")

ffi.cdef [[
int mgffi_md5(const void *data, size_t len, uint8_t *out, size_t out_len);
int mgffi_sha1(const void *data, size_t len, uint8_t *out, size_t out_len);
]]

local C = core.C
local ffi_string = ffi.string
local band, bor, bxor, lshift, rshift = bit.band, bit.bor, bit.bxor, bit.lshift, bit.rshift
local type, error, select, tostring = type, error, select, tostring
local tonumber, str_byte, str_char, str_format = tonumber, string.byte, string.char, string.format
local str_gsub, str_rep, concat, floor = string.gsub, string.rep, table.concat, math.floor

local ngx = {}

---------------------------------------------------------------------------
-- Constants
---------------------------------------------------------------------------

ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR = 0, 1, 2, 3, 4
ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 5, 6, 7, 8
ngx.HTTP_OK, ngx.HTTP_NOT_FOUND, ngx.HTTP_INTERNAL_SERVER_ERROR = 200, 404, 500

-- The NULL of lua-cjson when it is installed (so that ngx.null ==
-- cjson.null, as in OpenResty), else a value of its own.
do
  local ok, cjson = pcall(require, "cjson")
  ngx.null = ok and type(cjson) == "table" and cjson.null or newproxy(false)
end

-- The API level emulated (lua-nginx-module 0.10.25), for libraries that
-- check it (lua-nginx-websocket's client wants 0.9.11 or later).
ngx.config = {
  subsystem = "http", debug = false, ngx_lua_version = 10025, nginx_version = 1022001,
  prefix = function() return "" end, nginx_configure = function() return "" end,
}

---------------------------------------------------------------------------
-- Waiting, time, logging
---------------------------------------------------------------------------

--- Waits sec seconds (in a task; in the main program it polls).
function ngx.sleep(sec)
  if type(sec) ~= "number" or sec ~= sec or sec < 0 then
    error("bad argument: a non-negative number of seconds expected", 2)
  end
  local ok, err = coro.sleep(floor(sec * 1000 + 0.5))
  if not ok then
    return nil, err
  end
end

local getpid
if ffi.os == "Windows" then
  -- No gettimeofday or getpid in the Windows system libraries: the
  -- system time in 100 ns units since 1601, and the process id.
  ffi.cdef [[
void GetSystemTimeAsFileTime(uint64_t *ft);
uint32_t GetCurrentProcessId(void);
]]
  local ft = ffi.new("uint64_t[1]")
  function ngx.now()
    ffi.C.GetSystemTimeAsFileTime(ft)
    local ms = floor(tonumber((ft[0] - 116444736000000000ULL) / 10000ULL))
    return ms / 1000
  end
  getpid = function() return tonumber(ffi.C.GetCurrentProcessId()) end
else
  ffi.cdef [[
struct mgffi_ngx_timeval { long tv_sec; long tv_usec; };
int gettimeofday(struct mgffi_ngx_timeval *tv, void *tz);
int getpid(void);
]]
  local tv = ffi.new("struct mgffi_ngx_timeval")

  --- Seconds since the epoch, with milliseconds.
  function ngx.now()
    ffi.C.gettimeofday(tv, nil)
    return tonumber(tv.tv_sec) + floor(tonumber(tv.tv_usec) / 1000) / 1000
  end
  getpid = function() return ffi.C.getpid() end
end

function ngx.time()
  return os.time()
end

function ngx.update_time() end -- the time is read when asked for

function ngx.today()
  return os.date("%Y-%m-%d")
end

function ngx.localtime()
  return os.date("%Y-%m-%d %H:%M:%S")
end

function ngx.utctime()
  return os.date("!%Y-%m-%d %H:%M:%S")
end

function ngx.http_time(sec)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", sec)
end

function ngx.cookie_time(sec)
  return os.date("!%a, %d-%b-%y %H:%M:%S GMT", sec)
end

local LEVEL_NAMES = { [0] = "error", "error", "error", "error", "error", "warn", "info", "info", "debug" }

--- Logs the arguments (tostring'ed, nil as "nil") at an ngx level through
-- the running task's manager (its log function and log_level).
function ngx.log(level, ...)
  local name = LEVEL_NAMES[level]
  if name == nil then
    error("bad log level", 2)
  end
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    parts[i] = v == nil and "nil" or tostring(v)
  end
  local msg = concat(parts, "", 1, n)
  local mgr = coro.current_manager()
  if mgr then
    mgr:log(name, msg)
  else
    io.stderr:write("[ngx] ", name, ": ", msg, "\n")
  end
end

--- "init" outside any task, "timer" in a timer, else "content".
function ngx.get_phase()
  local task = coro.running()
  if task == nil then
    return "init"
  end
  return task.phase or "content"
end

---------------------------------------------------------------------------
-- URIs
---------------------------------------------------------------------------

local function hex_of(c)
  return str_format("%%%02X", str_byte(c))
end

--- Escapes str as a URI component (type 2, the default: everything but
-- letters, digits and - . _ ~) or as a full URI (type 0: space, #, %, ?,
-- control bytes and bytes from 0x7F).
function ngx.escape_uri(str, kind)
  str = tostring(str)
  if kind == 0 then
    return (str_gsub(str, "[%s#%%%?%c\127-\255]", hex_of))
  end
  return (str_gsub(str, "[^%w%-%._~]", hex_of))
end

local function char_of(h)
  return str_char(tonumber(h, 16))
end

--- Decodes %XX escapes (and + as a space).
function ngx.unescape_uri(str)
  str = str_gsub(tostring(str), "+", " ")
  return (str_gsub(str, "%%(%x%x)", char_of))
end

--- "a=1&b=2" from { a = 1, b = 2 } (values: strings, numbers, true, or
-- lists of them), escaped.
function ngx.encode_args(t)
  local parts = {}
  for k, v in pairs(t) do
    local key = ngx.escape_uri(k)
    local vals = type(v) == "table" and v or { v }
    for _, x in ipairs(vals) do
      if x == true then
        parts[#parts + 1] = key
      elseif x ~= false then
        parts[#parts + 1] = key .. "=" .. ngx.escape_uri(x)
      end
    end
  end
  return concat(parts, "&")
end

--- { a = "1", b = { "2", "3" } } from "a=1&b=2&b=3" (at most max_args,
-- default 100, pairs).
function ngx.decode_args(str, max_args)
  local t, n = {}, 0
  max_args = max_args or 100
  for pair in str:gmatch("[^&]+") do
    n = n + 1
    if max_args > 0 and n > max_args then
      break
    end
    local k, eq, v = pair:match("^([^=]*)(=?)(.*)$")
    k = ngx.unescape_uri(k)
    core.add_value(t, k, eq == "" and true or ngx.unescape_uri(v))
  end
  return t
end

---------------------------------------------------------------------------
-- Base64
---------------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc = ffi.new("uint8_t[64]")
local dec = ffi.new("int16_t[256]", -1)
for i = 0, 63 do
  enc[i] = str_byte(B64, i + 1)
  dec[enc[i]] = i
end
local b64buf, b64size = nil, 0
local function buffer(n)
  if n > b64size then
    b64size = n
    b64buf = ffi.new("uint8_t[?]", n)
  end
  return b64buf
end

--- Base64 of s (with = padding unless no_padding).
function ngx.encode_base64(s, no_padding)
  if type(s) ~= "string" then
    if type(s) == "number" then
      s = tostring(s)
    else
      error("bad argument #1 to 'encode_base64' (string expected)", 2)
    end
  end
  local n = #s
  local out = buffer(floor((n + 2) / 3) * 4 + 1)
  local p = ffi.cast("const uint8_t *", s)
  local o = 0
  for i = 0, n - 3, 3 do
    local v = bor(lshift(p[i], 16), lshift(p[i + 1], 8), p[i + 2])
    out[o], out[o + 1] = enc[rshift(v, 18)], enc[band(rshift(v, 12), 63)]
    out[o + 2], out[o + 3] = enc[band(rshift(v, 6), 63)], enc[band(v, 63)]
    o = o + 4
  end
  local rest = n % 3
  if rest > 0 then
    local i = n - rest
    local v = lshift(p[i], 16)
    if rest == 2 then
      v = bor(v, lshift(p[i + 1], 8))
    end
    out[o], out[o + 1] = enc[rshift(v, 18)], enc[band(rshift(v, 12), 63)]
    o = o + 2
    if rest == 2 then
      out[o] = enc[band(rshift(v, 6), 63)]
      o = o + 1
    end
    if not no_padding then
      local pad = 3 - rest
      for _ = 1, pad do
        out[o] = 61
        o = o + 1
      end
    end
  end
  return ffi_string(out, o)
end

--- The bytes of base64 text s (padding optional), or nil when s is not
-- base64.
function ngx.decode_base64(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'decode_base64' (string expected)", 2)
  end
  local n = #s
  while n > 0 and str_byte(s, n) == 61 do -- '='
    n = n - 1
  end
  if n % 4 == 1 or #s - n > 2 then
    return nil
  end
  local out = buffer(floor(n * 3 / 4) + 3)
  local p = ffi.cast("const uint8_t *", s)
  local o, v, bits = 0, 0, 0
  for i = 0, n - 1 do
    local d = dec[p[i]]
    if d < 0 then
      return nil
    end
    v = bor(lshift(band(v, 0xFFFF), 6), d)
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[o] = band(rshift(v, bits), 255)
      o = o + 1
    end
  end
  return ffi_string(out, o)
end

---------------------------------------------------------------------------
-- Digests (Mongoose's MD5 and SHA-1; HMAC written here, RFC 2104)
---------------------------------------------------------------------------

local digest = ffi.new("uint8_t[20]")

function ngx.md5_bin(s)
  s = tostring(s)
  C.mgffi_md5(s, #s, digest, 20)
  return ffi_string(digest, 16)
end

local function to_hex(bin)
  return (str_gsub(bin, ".", function(c) return str_format("%02x", str_byte(c)) end))
end

function ngx.md5(s)
  return to_hex(ngx.md5_bin(s))
end

function ngx.sha1_bin(s)
  s = tostring(s)
  C.mgffi_sha1(s, #s, digest, 20)
  return ffi_string(digest, 20)
end

local function xor_pad(key, byte)
  local out = {}
  for i = 1, 64 do
    out[i] = str_char(bxor(str_byte(key, i), byte))
  end
  return concat(out)
end

--- HMAC-SHA1 of s under key (binary, 20 bytes).
function ngx.hmac_sha1(key, s)
  key, s = tostring(key), tostring(s)
  if #key > 64 then
    key = ngx.sha1_bin(key)
  end
  key = key .. str_rep("\0", 64 - #key)
  return ngx.sha1_bin(xor_pad(key, 0x5c) .. ngx.sha1_bin(xor_pad(key, 0x36) .. s))
end

---------------------------------------------------------------------------
-- Cosockets, threads, timers, semaphores, the worker
---------------------------------------------------------------------------

ngx.socket = {
  tcp = function() return socket.tcp() end,
  udp = function() return socket.udp() end,
  --- A TCP cosocket connected to host and port.
  connect = function(host, port, opts)
    local s = socket.tcp()
    local ok, err = s:connect(host, port, opts)
    if not ok then
      return nil, err
    end
    return s
  end,
}
ngx.socket.stream = ngx.socket.tcp

ngx.thread = {
  spawn = function(fn, ...)
    return thread.spawn(nil, fn, ...)
  end,
  wait = thread.wait,
  kill = thread.kill,
}

local timers_running, timers_pending = 0, 0

-- A timer's function runs in a task with premature (true when the manager
-- is closing) and the arguments given.
local function timer_fn(fn, args)
  return function(t)
    timers_pending = timers_pending - (t.interval and 0 or 1)
    timers_running = timers_running + 1
    local task = coro.running()
    if task then
      task.phase = "timer"
    end
    local ok, err = pcall(fn, false, unpack(args, 1, args.n))
    if task then
      task.phase = nil
    end
    timers_running = timers_running - 1
    if not ok then
      error(err, 0)
    end
  end
end

local function start_timer(delay, fn, every, ...)
  if type(delay) ~= "number" or delay ~= delay or delay < 0 then
    error("bad argument #1: delay must be a non-negative number of seconds", 3)
  end
  if type(fn) ~= "function" then
    error("bad argument #2: a function expected", 3)
  end
  local mgr = coro.current_manager()
  if mgr == nil or mgr.closed then
    return nil, "process exiting"
  end
  local args = { n = select("#", ...), ... }
  local ms = delay * 1000
  if every then
    mgr:set_interval(ms > 0 and ms or 1, timer_fn(fn, args))
  else
    timers_pending = timers_pending + 1
    mgr:set_timeout(ms, timer_fn(fn, args))
  end
  return true
end

ngx.timer = {
  --- Runs fn(premature, ...) once, delay seconds from now.
  at = function(delay, fn, ...) return start_timer(delay, fn, false, ...) end,
  --- Runs fn(premature, ...) every delay seconds.
  every = function(delay, fn, ...) return start_timer(delay, fn, true, ...) end,
  running_count = function() return timers_running end,
  pending_count = function() return timers_pending end,
}

-- ngx.semaphore (as require("ngx.semaphore") in OpenResty): timeouts in
-- seconds.
local semaphore = {}
function semaphore.new(n)
  local sem = thread.semaphore(n or 0)
  return setmetatable({ sem = sem }, { __index = semaphore })
end
function semaphore:post(n) return self.sem:post(n) end
function semaphore:count() return self.sem:count() end
function semaphore:wait(sec)
  if type(sec) ~= "number" or sec < 0 then
    error("bad argument: a non-negative number of seconds expected", 2)
  end
  return self.sem:wait(sec * 1000)
end
ngx.semaphore = semaphore
package.loaded["ngx.semaphore"] = package.loaded["ngx.semaphore"] or semaphore

ngx.worker = {
  --- True once the manager stops (run() returning) or is closed.
  exiting = function()
    local mgr = coro.current_manager()
    return mgr == nil or mgr.closed or mgr.stopping == true
  end,
  pid = getpid,
  id = function() return 0 end,
  count = function() return 1 end,
}

ngx.re = require("mongoose.ngx_re")

---------------------------------------------------------------------------

if _G.ngx == nil then
  _G.ngx = ngx
end

return ngx
