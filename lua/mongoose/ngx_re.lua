-- mongoose.ngx_re: ngx.re (match, find, gmatch, sub, gsub) with PCRE
-- regular expressions, as OpenResty's, on the system's PCRE2 library
-- (libpcre2-8, through the FFI; Debian installs it with grep). Options:
-- i (caseless), m (multi-line), s (dot matches newline), x (extended),
-- u (UTF-8), a (anchored), D (duplicate names), j (JIT); o is accepted
-- (compiled patterns are always cached).
local ffi = require("ffi")

local ffi_string, type, error, tostring = ffi.string, type, error, tostring
local tonumber, str_byte, str_sub, concat = tonumber, string.byte, string.sub, table.concat
local bor = require("bit").bor

ffi.cdef [[
typedef struct pcre2_real_code_8 pcre2_code_8;
typedef struct pcre2_real_match_data_8 pcre2_match_data_8;
pcre2_code_8 *pcre2_compile_8(const char *pattern, size_t length, uint32_t options, int *errorcode,
                              size_t *erroroffset, void *ccontext);
void pcre2_code_free_8(pcre2_code_8 *code);
int pcre2_jit_compile_8(pcre2_code_8 *code, uint32_t options);
pcre2_match_data_8 *pcre2_match_data_create_from_pattern_8(const pcre2_code_8 *code, void *gcontext);
void pcre2_match_data_free_8(pcre2_match_data_8 *match_data);
int pcre2_match_8(const pcre2_code_8 *code, const char *subject, size_t length, size_t startoffset,
                  uint32_t options, pcre2_match_data_8 *match_data, void *mcontext);
size_t *pcre2_get_ovector_pointer_8(pcre2_match_data_8 *match_data);
int pcre2_get_error_message_8(int errorcode, unsigned char *buffer, size_t bufflen);
int pcre2_pattern_info_8(const pcre2_code_8 *code, uint32_t what, void *where);
]]

local pcre
do
  -- On Windows: libpcre2-8-0.dll (MSYS2's), libpcre2-8.dll (PCRE2's own
  -- CMake build).
  for _, name in ipairs({ "pcre2-8", "libpcre2-8.so.0", "libpcre2-8-0", "libpcre2-8" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok then
      pcre = lib
      break
    end
  end
end

local _M = {}

local OPTIONS = {
  i = 0x00000008, m = 0x00000400, s = 0x00000020, x = 0x00000080, u = 0x00080000,
  a = 0x80000000, D = 0x00000040, J = 0x00000040, U = 0x00080000,
  o = 0, j = 0, d = 0,
}
local INFO_CAPTURECOUNT, INFO_NAMECOUNT, INFO_NAMEENTRYSIZE, INFO_NAMETABLE = 4, 17, 18, 19
local ERROR_NOMATCH = -1

local cache, cached = {}, 0
local CACHE_MAX = 1024
local errcode, erroff = ffi.new("int[1]"), ffi.new("size_t[1]")
local u32 = ffi.new("uint32_t[1]")
local ptr = ffi.new("const uint8_t *[1]")
local msgbuf = ffi.new("unsigned char[256]")

-- The compiled regex: { code, md, ncap, names = { [i] = name } }, or nil, err.
local function compile(regex, opts)
  if pcre == nil then
    return nil, "ngx.re needs the PCRE2 library (libpcre2-8)"
  end
  if type(regex) ~= "string" then
    error("bad argument: the regex must be a string", 3)
  end
  opts = opts or ""
  local key = opts .. "/" .. regex
  local re = cache[key]
  if re then
    return re
  end
  local flags, jit = 0, false
  for i = 1, #opts do
    local c = str_sub(opts, i, i)
    local f = OPTIONS[c]
    if f == nil then
      error("unknown flag \"" .. c .. "\"", 3)
    end
    flags = bor(flags, f)
    jit = jit or c == "j"
  end
  local code = pcre.pcre2_compile_8(regex, #regex, flags, errcode, erroff, nil)
  if code == nil then
    pcre.pcre2_get_error_message_8(errcode[0], msgbuf, 256)
    return nil, "failed to compile regex \"" .. regex .. "\": " .. ffi_string(msgbuf)
      .. " at offset " .. tonumber(erroff[0])
  end
  code = ffi.gc(code, pcre.pcre2_code_free_8)
  if jit then
    pcre.pcre2_jit_compile_8(code, 1)
  end
  pcre.pcre2_pattern_info_8(code, INFO_CAPTURECOUNT, u32)
  local ncap = tonumber(u32[0])
  local names
  pcre.pcre2_pattern_info_8(code, INFO_NAMECOUNT, u32)
  local nnames = tonumber(u32[0])
  if nnames > 0 then
    names = {}
    pcre.pcre2_pattern_info_8(code, INFO_NAMEENTRYSIZE, u32)
    local size = tonumber(u32[0])
    pcre.pcre2_pattern_info_8(code, INFO_NAMETABLE, ptr)
    local t = ptr[0]
    for i = 0, nnames - 1 do
      local e = t + i * size
      names[e[0] * 256 + e[1]] = ffi_string(e + 2)
    end
  end
  local md = ffi.gc(pcre.pcre2_match_data_create_from_pattern_8(code, nil), pcre.pcre2_match_data_free_8)
  re = { code = code, md = md, ncap = ncap, names = names }
  if cached >= CACHE_MAX then
    cache, cached = {}, 0
  end
  cache[key] = re
  cached = cached + 1
  return re
end

-- Runs re on subject from byte offset init (0-based); returns the
-- ovector or nil (no match), or false, err.
local function exec(re, subject, init)
  local rc = pcre.pcre2_match_8(re.code, subject, #subject, init, 0, re.md, nil)
  if rc == ERROR_NOMATCH then
    return nil
  elseif rc < 0 then
    pcre.pcre2_get_error_message_8(rc, msgbuf, 256)
    return false, ffi_string(msgbuf)
  end
  return pcre.pcre2_get_ovector_pointer_8(re.md)
end

local UNSET = ffi.cast("size_t", -1)

local function captures(re, subject, ov, res)
  local m = res or {}
  for i = 0, re.ncap do
    local s, e = ov[2 * i], ov[2 * i + 1]
    if s == UNSET then
      m[i] = false
    else
      m[i] = str_sub(subject, tonumber(s) + 1, tonumber(e))
    end
  end
  local names = re.names
  if names then
    for i, name in pairs(names) do
      m[name] = m[i]
    end
  end
  return m
end

local function start_of(ctx)
  local pos = ctx and ctx.pos or 1
  return pos > 0 and pos - 1 or 0
end

--- The captures of the first match of regex in subject ([0]: the whole
-- match, [n]: groups, false when a group did not take part, names), or
-- nil; nil, err on a bad regex. ctx.pos: where to start (and, after, the
-- position after the match).
function _M.match(subject, regex, opts, ctx, res)
  subject = tostring(subject)
  local re, err = compile(regex, opts)
  if not re then
    return nil, err
  end
  local ov
  ov, err = exec(re, subject, start_of(ctx))
  if not ov then
    return nil, err
  end
  if ctx then
    ctx.pos = tonumber(ov[1]) + 1
  end
  return captures(re, subject, ov, res)
end

--- The start and end (1-based, inclusive) of the first match, or of its
-- capture nth; nil when there is none.
function _M.find(subject, regex, opts, ctx, nth)
  subject = tostring(subject)
  local re, err = compile(regex, opts)
  if not re then
    return nil, nil, err
  end
  local ov
  ov, err = exec(re, subject, start_of(ctx))
  if not ov then
    return nil, nil, err
  end
  if ctx then
    ctx.pos = tonumber(ov[1]) + 1
  end
  nth = nth or 0
  local s, e = ov[2 * nth], ov[2 * nth + 1]
  if s == UNSET then
    return nil
  end
  return tonumber(s) + 1, tonumber(e)
end

--- An iterator over the matches (their captures tables).
function _M.gmatch(subject, regex, opts)
  subject = tostring(subject)
  local re, err = compile(regex, opts)
  if not re then
    return nil, err
  end
  local pos, done = 0, false
  return function()
    if done or pos > #subject then
      return nil
    end
    local ov, e = exec(re, subject, pos)
    if not ov then
      done = true
      return nil, e
    end
    local s, f = tonumber(ov[0]), tonumber(ov[1])
    pos = f > s and f or f + 1 -- an empty match moves on by one byte
    return captures(re, subject, ov)
  end
end

-- The replacement for one match: a function of the captures, or a
-- template with $0..$99, ${name} and $$.
local function expand(re, subject, ov, repl)
  if type(repl) == "function" then
    return tostring(repl(captures(re, subject, ov)))
  end
  if not repl:find("$", 1, true) then
    return repl
  end
  local m = captures(re, subject, ov)
  local out, i, n = {}, 1, #repl
  while i <= n do
    local c = str_byte(repl, i)
    if c == 36 then -- $
      local nxt = str_sub(repl, i + 1, i + 1)
      if nxt == "$" then
        out[#out + 1] = "$"
        i = i + 2
      elseif nxt == "{" then
        local close = repl:find("}", i + 2, true)
        if not close then
          return nil, "the closing bracket in \"" .. repl .. "\" is missing"
        end
        local name = str_sub(repl, i + 2, close - 1)
        out[#out + 1] = m[tonumber(name) or name] or ""
        i = close + 1
      else
        local digits = repl:match("^%d%d?", i + 1)
        if not digits then
          return nil, "bad template \"" .. repl .. "\""
        end
        out[#out + 1] = m[tonumber(digits)] or ""
        i = i + 1 + #digits
      end
    else
      local nxt = repl:find("$", i, true) or n + 1
      out[#out + 1] = str_sub(repl, i, nxt - 1)
      i = nxt
    end
  end
  return concat(out)
end

local function substitute(subject, regex, repl, opts, all)
  subject = tostring(subject)
  if type(repl) ~= "string" and type(repl) ~= "function" then
    error("bad argument: the replacement must be a string or a function", 3)
  end
  local re, err = compile(regex, opts)
  if not re then
    return nil, nil, err
  end
  local out, pos, count = {}, 0, 0
  local len = #subject
  while pos <= len do
    local ov
    ov, err = exec(re, subject, pos)
    if ov == false then
      return nil, nil, err
    elseif ov == nil then
      break
    end
    local s, f = tonumber(ov[0]), tonumber(ov[1])
    local piece
    piece, err = expand(re, subject, ov, repl)
    if not piece then
      return nil, nil, err
    end
    out[#out + 1] = str_sub(subject, pos + 1, s)
    out[#out + 1] = piece
    count = count + 1
    if f == s then -- an empty match: keep the next byte, move on
      out[#out + 1] = str_sub(subject, f + 1, f + 1)
      pos = f + 1
    else
      pos = f
    end
    if not all then
      break
    end
  end
  out[#out + 1] = str_sub(subject, pos + 1)
  return concat(out), count
end

--- subject with the first match replaced; returns it and the count.
function _M.sub(subject, regex, repl, opts)
  return substitute(subject, regex, repl, opts, false)
end

--- subject with every match replaced; returns it and the count.
function _M.gsub(subject, regex, repl, opts)
  return substitute(subject, regex, repl, opts, true)
end

return _M
