-- mongoose.web.log: access logs from the listener's on_response records
-- (every reply, the glue's own 400/408/413/431/503 included), in the
-- combined log format of Apache and nginx.
local type, error, pcall, tostring = type, error, pcall, tostring
local os_date, os_time, str_gsub, concat = os.date, os.time, string.gsub, table.concat

local _M = {}

local last_second, last_stamp = nil, nil

-- The local offset from UTC as +hhmm: strftime's %z, except on Windows,
-- whose C runtime gives the zone's name there instead.
local zone
if require("ffi").os == "Windows" then
  local floor, format = math.floor, string.format
  zone = function(now)
    local l, u = os_date("*t", now), os_date("!*t", now)
    u.isdst = l.isdst
    local minutes = floor((os_time(l) - os_time(u)) / 60 + 0.5)
    local sign = minutes < 0 and "-" or "+"
    minutes = minutes < 0 and -minutes or minutes
    return format("%s%02d%02d", sign, floor(minutes / 60), minutes % 60)
  end
end

-- "[10/Oct/2000:13:55:36 +0000]" for now, made once a second.
local function stamp()
  local now = os_time()
  if now ~= last_second then
    last_second = now
    if zone then
      last_stamp = os_date("[%d/%b/%Y:%H:%M:%S ", now) .. zone(now) .. "]"
    else
      last_stamp = os_date("[%d/%b/%Y:%H:%M:%S %z]", now)
    end
  end
  return last_stamp
end

-- A header of req, or "-" (also when the request's bytes are gone).
local function header(req, name)
  local ok, v = pcall(req.header, req, name)
  if ok and v ~= nil and v ~= "" then
    return (str_gsub(v, '["\\]', "\\%0"))
  end
  return "-"
end

local parts = {}

--- The combined-format line of an on_response record res (no newline):
-- remote - user [time] "request line" status bytes "referer" "user agent".
function _M.combined(res)
  local req = res.req
  local remote, line, user, referer, agent = "-", "-", "-", "-", "-"
  if req then
    remote = req:remote_ip() or "-"
    local target = req.path
    if req.query ~= "" then
      target = target .. "?" .. req.query
    end
    line = req.method .. " " .. (str_gsub(target, '["\\]', "\\%0")) .. " " .. req.version
    user = req.user and tostring(req.user) or "-"
    referer = header(req, "referer")
    agent = header(req, "user-agent")
  elseif res.remote then
    remote = res.remote:match("^%[(.*)%]:%d+$") or res.remote:match("^(.*):%d+$") or res.remote
  end
  local bytes = res.bytes
  parts[1] = remote
  parts[2] = " - "
  parts[3] = user
  parts[4] = " "
  parts[5] = stamp()
  parts[6] = ' "'
  parts[7] = line
  parts[8] = '" '
  parts[9] = res.status and tostring(res.status) or "-"
  parts[10] = " "
  parts[11] = (bytes and bytes > 0) and tostring(bytes) or "-"
  parts[12] = ' "'
  parts[13] = referer
  parts[14] = '" "'
  parts[15] = agent
  parts[16] = '"'
  return concat(parts, "", 1, 16)
end

--- An on_response function writing one combined-format line per reply to
-- out: a function(line) or a file (default io.stdout; a newline is
-- added). opts.duration: also the milliseconds taken, at the end.
function _M.access_log(out, opts)
  out = out or io.stdout
  local with_duration = opts and opts.duration
  local write
  if type(out) == "function" then
    write = out
  elseif io.type(out) == "file" then
    write = function(line)
      out:write(line, "\n")
    end
  else
    error("out must be a function or a file", 2)
  end
  return function(res)
    local line = _M.combined(res)
    if with_duration then
      line = line .. " " .. tostring(res.duration or 0) .. "ms"
    end
    write(line)
  end
end

return _M
