-- mongoose.socket_read: how TCP cosockets read (mongoose.socket): bytes
-- received wait in the socket's buffer (sock.buf from sock.pos); a reader
-- states what it wants (sock.want: a line "l", n bytes "n", everything
-- "a", what is there "any", up to a pattern "u") and waits until the
-- buffer holds it. Past MAX_BUFFER bytes the connection is not read until
-- the reader takes them (except while reading everything, "*a").
local coro = require("mongoose.coro")
local core = require("mongoose.core")

local C_pause, type, error, tostring = core.C.mgffi_pause_reading, type, error, tostring
local tonumber, str_find, str_sub, str_byte = tonumber, string.find, string.sub, string.byte
local running, wait, wake = coro.running, coro.wait, coro.wake

local _M = {}

local MAX_BUFFER = 4 * 1048576 -- bytes buffered before reading pauses
_M.MAX_BUFFER = MAX_BUFFER

-- What a waiting reader asked for, if the buffer holds it now: the
-- values to wake it with, or nil.
local function take(self)
  local want, buf, pos = self.want, self.buf, self.pos
  if want == "n" then
    local n = self.want_n
    if #buf - pos + 1 >= n then
      self.pos = pos + n
      return str_sub(buf, pos, pos + n - 1)
    end
  elseif want == "l" then
    local e = str_find(buf, "\n", pos, true)
    if e then
      self.pos = e + 1
      if e > pos and str_byte(buf, e - 1) == 13 then
        return str_sub(buf, pos, e - 2)
      end
      return str_sub(buf, pos, e - 1)
    end
  elseif want == "u" then
    return self.until_fn(self)
  elseif want == "any" then
    local size = #buf - pos + 1
    if size > 0 then
      local n = self.want_n
      if size <= n then
        self.buf, self.pos = "", 1
        return pos == 1 and buf or str_sub(buf, pos)
      end
      self.pos = pos + n
      return str_sub(buf, pos, pos + n - 1)
    end
  end
  return nil
end

-- Resumes the reader when what it wants is there (or can no longer come).
function _M.serve_reader(self)
  local task = self.reader
  if task == nil then
    return
  end
  local got = nil
  if self.want ~= "a" then
    got = take(self)
  end
  if got ~= nil then
    self.reader = nil
    return wake(task, self, got)
  end
  if self.eof then
    self.reader = nil
    local rest = str_sub(self.buf, self.pos)
    self.buf, self.pos = "", 1
    if self.want == "a" then -- all of it: the socket is done
      self.id, self.eof = nil, false
      return wake(task, self, rest)
    end
    return wake(task, self, nil, self.err or "closed", rest)
  end
end

function _M.compact(self)
  local pos = self.pos
  if pos > 1 then
    if pos > #self.buf then
      self.buf = ""
    else
      self.buf = str_sub(self.buf, pos)
    end
    self.pos = 1
  end
end

-- Pauses reading while more than MAX_BUFFER bytes wait, resumes below.
-- Pauses reading while more than MAX_BUFFER bytes wait and no reader
-- wants more; resumes below half of it, or as soon as a reader waits.
local function check_buffer(self)
  local id = self.id
  if id == nil or self.mgr.cm == nil then
    return
  end
  local size = #self.buf - self.pos + 1
  if self.paused then
    if size <= MAX_BUFFER / 2 or self.reader then
      self.paused = false
      C_pause(self.mgr.cm, id, 0)
    end
  elseif size > MAX_BUFFER and not self.reader then
    self.paused = true
    C_pause(self.mgr.cm, id, 1)
  end
end

_M.check_buffer = check_buffer

-- The reader's want, evaluated on the socket's buffer: the bytes to hand
-- out, false at the pattern (reader(size) then returns nil), or nil to
-- wait for more.
local function until_fn(st)
  return function(sock)
    local buf, pos, pattern = sock.buf, sock.pos, st.pattern
    local s, e = str_find(buf, pattern, pos, true)
    local size = st.size
    if size == nil then
      if not s then
        return nil
      end
      sock.pos = e + 1
      return str_sub(buf, pos, st.inclusive and e or s - 1)
    end
    if s == pos then
      sock.pos = e + 1
      if st.inclusive then
        return pattern
      end
      return false
    end
    -- Bytes that cannot start the pattern may go out in pieces of size.
    local limit = s and s - 1 or #buf - #pattern + 1
    if limit - pos + 1 >= size then
      sock.pos = pos + size
      return str_sub(buf, pos, pos + size - 1)
    elseif s then
      sock.pos = s
      return str_sub(buf, pos, s - 1)
    end
    return nil
  end
end

-- What the buffer holds of the reader's want now (nil: not enough); a
-- paused connection resumes once the buffer is short again.
local function take_now(self)
  local got = take(self)
  if got ~= nil and self.paused then
    check_buffer(self)
  end
  return got
end

-- Waits for the reader's want (self.want, self.want_n) within the read
-- timeout; the task is the running one. A paused connection is resumed
-- for it, and paused again if what then arrived is over the limit.
local function read_wait(self, task)
  if self.reader then
    return nil, "socket busy reading"
  end
  self.reader = task
  if self.paused then
    check_buffer(self)
  end
  local a, b, c = wait(task, self, self.rtimeout)
  if self.paused and self.id then
    check_buffer(self)
  end
  return a, b, c
end

--- Reads: "*l" (default: a line, without CR LF), "*a" (everything until
-- the peer closes), or a number of bytes. Returns the data, or nil, an
-- error ("closed", "timeout") and what had arrived.
function _M.receive(self, pattern)
  local want, n = "l", 0
  if pattern == nil or pattern == "*l" or pattern == "l" then
    want = "l"
  elseif pattern == "*a" or pattern == "a" then
    want = "a"
  elseif type(pattern) == "number" or tonumber(pattern) then
    n = tonumber(pattern)
    if n < 0 or n % 1 ~= 0 then
      error("bad pattern argument: a byte count must be a non-negative integer", 2)
    end
    want = "n"
    if n == 0 then
      return ""
    end
  else
    error("bad pattern argument: " .. tostring(pattern), 2)
  end
  if self.id == nil and not self.eof then
    return nil, "closed"
  end
  self.want, self.want_n = want, n
  if want ~= "a" then
    local got = take_now(self)
    if got ~= nil then
      return got
    end
  end
  if self.eof then
    local rest = str_sub(self.buf, self.pos)
    self.buf, self.pos = "", 1
    if want == "a" then -- all of it: the socket is done
      self.id, self.eof = nil, false
      return rest
    end
    return nil, self.err or "closed", rest
  end
  local task = running()
  if task == nil then
    return coro.call_blocking(self.mgr, 2, _M.receive, self, pattern)
  end
  local a, b, c = read_wait(self, task)
  return a, b, c
end

--- Reads what has arrived, at most max bytes (waiting for at least one).
-- Returns the data, or nil, an error ("closed", "timeout").
function _M.receiveany(self, max)
  if type(max) ~= "number" or max < 1 or max % 1 ~= 0 then
    error("bad max argument: a positive integer expected", 2)
  end
  if self.id == nil and not self.eof then
    return nil, "closed"
  end
  self.want, self.want_n = "any", max
  local got = take_now(self)
  if got ~= nil then
    return got
  end
  if self.eof then
    return nil, self.err or "closed"
  end
  local task = running()
  if task == nil then
    return coro.call_blocking(self.mgr, 2, _M.receiveany, self, max)
  end
  local a, b = read_wait(self, task)
  return a, b
end

--- Waits until fn(sock), evaluated on the buffer (sock.buf from sock.pos)
-- whenever bytes arrive, gives something other than nil, and returns it;
-- fn consumes what it takes (advances sock.pos). Returns nil, an error
-- ("closed", "timeout") and what had arrived when the wait ends first.
-- For readers of the library's own (the HTTP client's response head).
function _M.receive_fn(sock, fn)
  if sock.id == nil and not sock.eof then
    return nil, "closed"
  end
  sock.want, sock.until_fn = "u", fn
  local got = take_now(sock)
  if got ~= nil then
    return got
  end
  if sock.eof then
    local rest = str_sub(sock.buf, sock.pos)
    sock.buf, sock.pos = "", 1
    return nil, sock.err or "closed", rest
  end
  local task = running()
  if task == nil then
    return coro.call_blocking(sock.mgr, 2, _M.receive_fn, sock, fn)
  end
  return read_wait(sock, task)
end

--- Returns an iterator reading up to (and consuming) pattern: it[size]
-- gives the bytes before the next pattern (at most size of them per call
-- when size is given, then nil at the pattern). opts.inclusive: the
-- pattern is part of what is returned.
function _M.receiveuntil(sock, pattern, opts)
  if type(pattern) ~= "string" or pattern == "" then
    error("pattern must be a non-empty string", 2)
  end
  core.opt_table(opts, 2)
  local st = { pattern = pattern, inclusive = opts and opts.inclusive == true, size = nil }
  local fn = until_fn(st)
  local function reader(size)
    if size ~= nil and (type(size) ~= "number" or size < 1 or size % 1 ~= 0) then
      error("size must be a positive integer", 2)
    end
    if sock.id == nil and not sock.eof then
      return nil, "closed"
    end
    st.size = size
    sock.want, sock.until_fn = "u", fn
    local got = take(sock)
    if got == nil and not sock.eof then
      local task = coro.running()
      if task == nil then
        return coro.call_blocking(sock.mgr, 2, reader, size)
      end
      local a, b, c = read_wait(sock, task)
      if a == false then
        return nil
      end
      return a, b, c
    elseif got == nil then
      local rest = str_sub(sock.buf, sock.pos)
      sock.buf, sock.pos = "", 1
      return nil, sock.err or "closed", rest
    end
    if got == false then
      return nil
    end
    return got
  end
  return reader
end

return _M
