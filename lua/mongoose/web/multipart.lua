-- mongoose.web.multipart: multipart/form-data (RFC 7578) parsed while it
-- streams in: a parser fed piece by piece holds at most one part's
-- headers, one field's value and a boundary's length of file data, so
-- uploads of any size take bounded memory. Fields become strings; files go
-- to a callback or straight to disk. handle() wires it to a request
-- (streamed through req:on_body, or whole).
local core = require("mongoose.core")
local crypto = require("mongoose.web.crypto")

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local io_open, str_find, str_sub, str_lower = io.open, string.find, string.sub, string.lower

local _M = {}

local Parser = core.class("mongoose.web.multipart.Parser")
_M.Parser = Parser

local DEFAULTS = {
  max_parts = 1000,            -- parts in one body
  max_field_size = 1048576,    -- bytes of one non-file field
  max_fields_size = 8388608,   -- bytes of all non-file fields
  max_file_size = 0,           -- bytes of one file (0: no limit)
  max_header_size = 8192,      -- bytes of one part's headers
}

--- The boundary of a multipart/form-data Content-Type value, or nil.
function _M.boundary(content_type)
  if type(content_type) ~= "string" then
    return nil
  end
  local mt = content_type:match("^%s*([^;%s]+)")
  if not mt or str_lower(mt) ~= "multipart/form-data" then
    return nil
  end
  local b = content_type:match(';%s*[bB][oO][uU][nN][dD][aA][rR][yY]="([^"]+)"')
    or content_type:match(";%s*[bB][oO][uU][nN][dD][aA][rR][yY]=([^;%s]+)")
  if not b or #b > 70 then
    return nil
  end
  return b
end

--- A parser for boundary. opts: on_field(name, value, part),
-- on_part(part) (a file part begins: part.name, part.filename,
-- part.content_type, part.headers), on_data(part, chunk) (file bytes),
-- on_part_end(part), dir (files are written there, part.path; instead of
-- on_data), and the limits max_parts, max_field_size, max_fields_size,
-- max_file_size (0: none), max_header_size.
function _M.new(boundary, opts)
  if type(boundary) ~= "string" or boundary == "" then
    error("boundary must be a non-empty string", 2)
  end
  opts = opts or {}
  local self = setmetatable({
    delim = "\r\n--" .. boundary,
    buf = "\r\n", -- the first boundary has no CRLF before it
    state = "preamble", part = nil, parts = 0, fields_size = 0,
    fields = {}, files = {}, opts = opts, failed = nil, done = false,
  }, Parser)
  for k, v in pairs(DEFAULTS) do
    self[k] = opts[k] or v
  end
  return self
end

local function fail(self, err, status)
  self.failed = err
  self.status = status or 400
  local part = self.part
  if part and part.file then
    part.file:close()
    part.file = nil
    os.remove(part.path)
  end
  return nil, err
end

-- Parses the headers of a part (the bytes before its blank line).
local function begin_part(self, head)
  self.parts = self.parts + 1
  if self.parts > self.max_parts then
    return fail(self, "too many parts", 413)
  end
  local headers = {}
  for line in head:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      headers[str_lower(name)] = value
    end
  end
  local cd = headers["content-disposition"]
  if not cd or not cd:lower():match("^%s*form%-data") then
    return fail(self, "part without Content-Disposition: form-data")
  end
  local name = cd:match(';%s*name="([^"]*)"') or cd:match(";%s*name=([^;%s]+)")
  if not name then
    return fail(self, "part without a name")
  end
  local filename = cd:match(';%s*filename="([^"]*)"') or cd:match(";%s*filename=([^;%s]+)")
  local part = { name = name, filename = filename, headers = headers,
                 content_type = headers["content-type"] or (filename and "application/octet-stream"
                                                           or "text/plain"), size = 0 }
  self.part = part
  if filename then
    part.is_file = true
    local dir = self.opts.dir
    if dir then
      part.path = dir .. "/upload-" .. crypto.token(12)
      local f, err = io_open(part.path, "wb")
      if not f then
        return fail(self, "cannot store the file: " .. tostring(err), 500)
      end
      part.file = f
    end
    local on_part = self.opts.on_part
    if on_part then
      on_part(part)
    end
  else
    part.chunks = {}
  end
  return true
end

-- Bytes of the current part's body.
local function part_data(self, s)
  local part = self.part
  local n = #s
  if n == 0 then
    return true
  end
  part.size = part.size + n
  if part.is_file then
    if self.max_file_size > 0 and part.size > self.max_file_size then
      return fail(self, "file too large", 413)
    end
    if part.file then
      local ok, err = part.file:write(s)
      if not ok then
        return fail(self, "cannot store the file: " .. tostring(err), 500)
      end
    else
      local on_data = self.opts.on_data
      if on_data then
        on_data(part, s)
      end
    end
  else
    self.fields_size = self.fields_size + n
    if part.size > self.max_field_size or self.fields_size > self.max_fields_size then
      return fail(self, "field too large", 413)
    end
    local chunks = part.chunks
    chunks[#chunks + 1] = s
  end
  return true
end

local function end_part(self)
  local part = self.part
  self.part = nil
  if part.is_file then
    if part.file then
      part.file:close()
      part.file = nil
    end
    local files = self.files
    files[#files + 1] = part
    local on_end = self.opts.on_part_end
    if on_end then
      on_end(part)
    end
  else
    local value = table.concat(part.chunks)
    part.chunks = nil
    core.add_value(self.fields, part.name, value)
    local on_field = self.opts.on_field
    if on_field then
      on_field(part.name, value, part)
    end
  end
  return true
end

--- Feeds the next bytes of the body. Returns true, or nil and an error
-- (then parser.status is the HTTP status to answer: 400 or 413).
function Parser:feed(chunk)
  if self.failed then
    return nil, self.failed
  end
  if self.done then
    return true -- the epilogue is ignored
  end
  local buf = self.buf
  buf = buf == "" and chunk or buf .. chunk
  local delim = self.delim
  local dlen = #delim
  local pos = 1
  while true do
    local state = self.state
    if state == "body" or state == "preamble" then
      local s = str_find(buf, delim, pos, true)
      if s == nil then
        -- Keep what could be the start of a delimiter.
        local keep = #buf - dlen + 1
        if keep >= pos then
          if state == "body" then
            local ok, err = part_data(self, str_sub(buf, pos, keep))
            if not ok then
              return nil, err
            end
          end
          pos = keep + 1
        end
        break
      end
      if state == "body" then
        local ok, err = part_data(self, str_sub(buf, pos, s - 1))
        if not ok then
          return nil, err
        end
        end_part(self)
      end
      pos = s + dlen
      self.state = "after_delim"
    elseif state == "after_delim" then
      if #buf - pos + 1 < 2 then
        break
      end
      local two = str_sub(buf, pos, pos + 1)
      if two == "--" then
        self.done = true
        self.buf = ""
        return true
      end
      -- Transport padding (spaces, tabs) then CRLF.
      local e = str_find(buf, "\r\n", pos, true)
      if e == nil then
        if #buf - pos > 256 then
          return fail(self, "malformed boundary line")
        end
        break
      end
      if str_find(str_sub(buf, pos, e - 1), "[^ \t]") then
        return fail(self, "malformed boundary line")
      end
      pos = e + 2
      self.state = "headers"
    else -- headers
      local e = str_find(buf, "\r\n\r\n", pos, true)
      local head
      if e == nil then
        if #buf - pos + 1 > self.max_header_size then
          return fail(self, "part headers too large", 413)
        end
        -- A part without headers starts with the blank line at once.
        if str_sub(buf, pos, pos + 1) ~= "\r\n" then
          break
        end
        head, e = "", pos - 2
      else
        head = str_sub(buf, pos, e - 1)
      end
      if #head > self.max_header_size then
        return fail(self, "part headers too large", 413)
      end
      local ok, err = begin_part(self, head)
      if not ok then
        return nil, err
      end
      pos = e + 4
      self.state = "body"
    end
  end
  self.buf = pos > #buf and "" or str_sub(buf, pos)
  return true
end

--- Ends the body: returns { fields = {...}, files = { part, ... } }, or
-- nil and an error when the body was cut or malformed.
function Parser:finish()
  if self.failed then
    return nil, self.failed
  end
  if not self.done then
    return fail(self, "multipart body ended before its closing boundary")
  end
  return { fields = self.fields, files = self.files }
end

local TEXT = { ["Content-Type"] = "text/plain" }

--- Parses the multipart/form-data body of req (streamed through
-- req:on_body, so give http_listen a stream_threshold for large uploads,
-- or whole) with the options of new(); then on_done(result, err, status)
-- runs (result: see finish). What on_done returns (status, body, headers;
-- a table body as JSON) is sent unless it replied itself. Returns nothing when it answers
-- later, else status, body, headers (400, 415) for the handler to return.
function _M.handle(req, res, opts, on_done)
  if type(on_done) ~= "function" then
    error("on_done must be a function", 2)
  end
  local boundary = _M.boundary(req:header("content-type"))
  if not boundary then
    return 415, "Content-Type must be multipart/form-data with a boundary\n", TEXT
  end
  local parser = _M.new(boundary, opts)
  local function done(result, err, status)
    local s, b, h = on_done(result, err, status)
    if s ~= nil and not (res.sent or res.chunked or res.closed) then
      if type(b) == "table" then -- as a web handler's return: JSON
        b = require("mongoose.web.body").encode_json(b)
        h = h or { ["Content-Type"] = "application/json" }
      end
      res:send(s, b, h)
    end
  end
  if not req.streaming then
    local ok, err = parser:feed(req:body())
    local result
    if ok then
      result, err = parser:finish()
    end
    if not result then
      return done(nil, err, parser.status)
    end
    return done(result)
  end
  req:on_body(function(chunk)
    if parser.failed then
      return -- the rest of the body is read and dropped
    end
    local ok, err = parser:feed(chunk)
    if not ok then
      done(nil, err, parser.status)
    end
  end, function()
    if parser.failed then
      return -- answered when it failed
    end
    local result, err = parser:finish()
    if not result then
      return done(nil, err, parser.status)
    end
    done(result)
  end)
end

return _M
