-- mongoose.web.compress: gzip and deflate of dynamic responses, chosen by
-- Accept-Encoding, with Debian's zlib (libz.so.1) through the FFI. Whole
-- replies above a minimum size are compressed at once (one reused zlib
-- stream per encoding); chunked replies (res:begin/write/finish, SSE) are
-- compressed as they are written, each write flushed so the client gets
-- it at once. Every reply that passes through gets Vary: Accept-Encoding.
local ffi = require("ffi")
local response = require("mongoose.response")

ffi.cdef [[
typedef struct mgweb_z_stream {
  const uint8_t *next_in;
  unsigned int avail_in;
  unsigned long total_in;
  uint8_t *next_out;
  unsigned int avail_out;
  unsigned long total_out;
  const char *msg;
  void *state;
  void *zalloc;
  void *zfree;
  void *opaque;
  int data_type;
  unsigned long adler;
  unsigned long reserved;
} mgweb_z_stream;
const char *zlibVersion(void);
int deflateInit2_(mgweb_z_stream *strm, int level, int method, int windowBits, int memLevel, int strategy, const char *version, int stream_size);
int deflate(mgweb_z_stream *strm, int flush);
int deflateReset(mgweb_z_stream *strm);
int deflateEnd(mgweb_z_stream *strm);
unsigned long deflateBound(mgweb_z_stream *strm, unsigned long sourceLen);
]]

local type, error, tostring, ffi_new = type, error, tostring, ffi.new
local ffi_gc, ffi_string, ffi_cast, str_find = ffi.gc, ffi.string, ffi.cast, string.find
local str_lower, str_match = string.lower, string.match
local copy_table = require("mongoose.core").copy_table

local Response = response.Response
local plain_send, plain_begin = Response.send, Response.begin
local plain_write, plain_finish = Response.write, Response.finish

local _M = {}

local zlib_ok, Z = pcall(ffi.load, "z")
if not zlib_ok then
  zlib_ok, Z = pcall(ffi.load, ffi.os == "Windows" and "zlib1" or "libz.so.1")
end

local Z_SYNC_FLUSH, Z_FINISH = 2, 4
local Z_OK, Z_STREAM_END = 0, 1
local Z_DEFLATED = 8
local WINDOW_BITS = { gzip = 31, deflate = 15 } -- 15 + 16: a gzip wrapper
local STREAM_SIZE = ffi.sizeof("mgweb_z_stream")

local function need_zlib(level)
  if not zlib_ok then
    error("compression needs zlib (libz.so.1, Debian's zlib1g)", (level or 1) + 1)
  end
end

-- A new zlib deflate stream (freed with deflateEnd when collected).
local function new_stream(encoding, level)
  local strm = ffi_new("mgweb_z_stream")
  if Z.deflateInit2_(strm, level, Z_DEFLATED, WINDOW_BITS[encoding], 8, 0, Z.zlibVersion(),
                     STREAM_SIZE) ~= Z_OK then
    return nil
  end
  return ffi_gc(strm, Z.deflateEnd)
end

local out_size = 65536
local out_buf = ffi_new("uint8_t[?]", out_size)

-- Runs deflate(flush) over s on strm; returns the compressed bytes.
local function run(strm, s, flush)
  strm.next_in = ffi_cast("const uint8_t *", s)
  strm.avail_in = #s
  local pieces, n = nil, 0
  local first
  repeat
    strm.next_out = out_buf
    strm.avail_out = out_size
    local rc = Z.deflate(strm, flush)
    if rc ~= Z_OK and rc ~= Z_STREAM_END then
      return nil, "deflate failed (" .. tostring(rc) .. ")"
    end
    local got = out_size - strm.avail_out
    if got > 0 then
      local piece = ffi_string(out_buf, got)
      if first == nil then
        first = piece
      else
        pieces = pieces or { first }
        n = n == 0 and 1 or n
        n = n + 1
        pieces[n] = piece
      end
    end
  until strm.avail_out ~= 0 and strm.avail_in == 0
  if pieces then
    return table.concat(pieces, "", 1, n)
  end
  return first or ""
end

-- Whole bodies: one stream per encoding and level, reset between uses.
local whole = {}

--- s compressed with encoding ("gzip" or "deflate") at level (default 6).
function _M.compress(s, encoding, level)
  need_zlib(2)
  if WINDOW_BITS[encoding] == nil then
    error("encoding must be \"gzip\" or \"deflate\"", 2)
  end
  level = level or 6
  local key = encoding .. level
  local strm = whole[key]
  if strm == nil then
    strm = new_stream(encoding, level)
    whole[key] = strm
  else
    Z.deflateReset(strm)
  end
  local bound = tonumber(Z.deflateBound(strm, #s)) + 64
  if bound > out_size then
    out_size = bound
    out_buf = ffi_new("uint8_t[?]", out_size)
  end
  return run(strm, s, Z_FINISH)
end

--- The encoding to use for an Accept-Encoding value: "gzip", "deflate"
-- or nil (q=0 refuses one; gzip is preferred at equal q).
function _M.negotiate(accept)
  if accept == nil or accept == "" then
    return nil
  end
  local best, best_q = nil, 0
  for item in accept:gmatch("[^,]+") do
    local name = str_lower(str_match(item, "^%s*([^;%s]+)") or "")
    local q = tonumber(str_match(item, ";%s*[qQ]%s*=%s*([%d.]+)") or "1") or 0
    if name == "*" then
      name = best == nil and "gzip" or nil
    end
    if (name == "gzip" or name == "deflate") and q > 0
       and (q > best_q or (q == best_q and name == "gzip")) then
      best, best_q = name, q
    end
  end
  return best
end

local COMPRESSIBLE = {
  "^text/", "^application/json", "^application/javascript", "^application/xml",
  "^application/[%w.%-]+%+json", "^application/[%w.%-]+%+xml", "^image/svg%+xml",
}

local function compressible(ct)
  if ct == nil then
    return false
  end
  ct = str_lower(ct)
  for i = 1, #COMPRESSIBLE do
    if str_find(ct, COMPRESSIBLE[i]) then
      return true
    end
  end
  return false
end
_M.compressible = compressible

-- The value of header name (its usual spelling or lower-cased) in hdrs or
-- in res's set headers.
local function header_of(res, hdrs, name, lname)
  local v = hdrs and (hdrs[name] or hdrs[lname])
  if v == nil then
    local d = res.default_headers
    v = d and (d[name] or d[lname])
  end
  return v
end

--- Adds token to res's Vary header (set with set_header), once.
function _M.add_vary(res, token)
  local d = res.default_headers
  local old = d and (d.Vary or d.vary)
  if old == nil then
    res:set_header("Vary", token)
  elseif not str_find(str_lower(old), str_lower(token), 1, true) then
    if d.vary then
      d.vary = nil
    end
    res:set_header("Vary", old .. ", " .. token)
  end
end

-- Whether a reply of status with headers hdrs should be compressed.
local function wanted(res, status, hdrs)
  if status < 200 or status == 204 or status == 206 or status == 304 then
    return false
  end
  if header_of(res, hdrs, "Content-Encoding", "content-encoding") ~= nil then
    return false
  end
  return compressible(header_of(res, hdrs, "Content-Type", "content-type"))
end

local function with_encoding(hdrs, encoding)
  local h = copy_table(hdrs)
  h["Content-Encoding"] = encoding
  return h
end

-- Response methods of a response whose client accepts res.gz_encoding.
local function gz_send(self, status, body, hdrs)
  local opts = self.gz_opts
  if type(status) == "number" and type(body) == "string" and #body >= opts.min_size
     and wanted(self, status, hdrs) then
    local z = _M.compress(body, self.gz_encoding, opts.level)
    if z and #z < #body then
      return plain_send(self, status, z, with_encoding(hdrs, self.gz_encoding))
    end
  end
  return plain_send(self, status, body, hdrs)
end

local function gz_begin(self, status, hdrs)
  if type(status) == "number" and wanted(self, status, hdrs) then
    local strm = new_stream(self.gz_encoding, self.gz_opts.level)
    if strm then
      self.gz_stream = strm
      return plain_begin(self, status, with_encoding(hdrs, self.gz_encoding))
    end
  end
  return plain_begin(self, status, hdrs)
end

local function gz_write(self, chunk)
  local strm = self.gz_stream
  if strm == nil or type(chunk) ~= "string" then
    return plain_write(self, chunk)
  end
  local z, err = run(strm, chunk, Z_SYNC_FLUSH)
  if not z then
    return nil, err
  end
  return plain_write(self, z)
end

local function gz_finish(self, chunk)
  local strm = self.gz_stream
  if strm == nil then
    return plain_finish(self, chunk)
  end
  if chunk ~= nil then
    local ok, err = gz_write(self, chunk)
    if not ok then
      return nil, err
    end
  end
  self.gz_stream = nil
  local tail = run(strm, "", Z_FINISH)
  Z.deflateEnd(ffi_gc(strm, nil))
  return plain_finish(self, tail ~= "" and tail or nil)
end

--- Middleware. opts: min_size (bytes below which whole replies are sent
-- as they are; default 1024), level (1-9, default 6). Replies the client
-- accepts gzip or deflate for, with a compressible Content-Type (text/*,
-- JSON, JavaScript, XML, SVG), no Content-Encoding of their own and a
-- status other than 204, 206 and 304, are compressed.
function _M.new(opts)
  need_zlib(2)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("opts must be a table", 2)
  end
  local o = { min_size = opts.min_size or 1024, level = opts.level or 6 }
  if type(o.min_size) ~= "number" or o.min_size < 0 then
    error("min_size must be a number of bytes", 2)
  end
  if type(o.level) ~= "number" or o.level < 1 or o.level > 9 or o.level % 1 ~= 0 then
    error("level must be an integer from 1 to 9", 2)
  end
  return function(req, res)
    _M.add_vary(res, "Accept-Encoding")
    local encoding = _M.negotiate(req:header("accept-encoding"))
    if encoding then
      -- Methods of this response only (fields shadow the class's).
      res.gz_encoding, res.gz_opts = encoding, o
      res.send, res.begin, res.write, res.finish = gz_send, gz_begin, gz_write, gz_finish
    end
    return nil
  end
end

--- True when zlib could be loaded.
function _M.available()
  return zlib_ok
end

return _M
