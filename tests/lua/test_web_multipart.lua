-- mongoose.web.multipart with curl -F as the client: fields as strings,
-- files to disk and to a callback, limits (413), bad bodies (400, 415),
-- boundaries split across every chunk edge, and a 1 GiB upload parsed as
-- it streams in with bounded memory (the process's peak RSS).
local T = require("testlib")
local web = require("mongoose.web")
local multipart = web.multipart

local mgr = T.logging_manager({ log_level = "info" })
local updir = T.tmpdir() .. "/uploads"
os.execute("mkdir -p " .. T.q(updir))

local last, big = nil, { bytes = 0, adler_a = 1 }
local app = web.new()
app:post("/upload", function(req, res)
  return multipart.handle(req, res, { dir = updir, max_file_size = 4 * 1024 * 1024, max_parts = 10 },
                          function(result, err, status)
    if not result then
      return status, err .. "\n"
    end
    last = result
    local f = result.files[1]
    return 200, string.format("%s %s %s %d\n", result.fields.title, f.name, f.filename, f.size)
  end)
end)
app:post("/big", function(req, res)
  big.bytes, big.parts = 0, 0
  return multipart.handle(req, res, {
    on_part = function() big.parts = big.parts + 1 end,
    on_data = function(_, chunk) big.bytes = big.bytes + #chunk end,
  }, function(result, err, status)
    if not result then
      return status, err .. "\n"
    end
    return 200, "got " .. big.bytes .. " bytes in " .. big.parts .. " file(s), note=" .. result.fields.note .. "\n"
  end)
end)
local listener = assert(app:listen(mgr, "http://127.0.0.1:0", { stream_threshold = 64 * 1024 }))
local base = "http://127.0.0.1:" .. listener:port()

local function curl(path, args, max_time)
  local out, rc, err = T.sh(mgr, "curl -sS -i -m " .. (max_time or 10) .. " " .. args .. " "
                            .. T.q(base .. path), (max_time or 10) * 1000 + 5000)
  T.eq(rc, 0, "curl exit status (" .. err .. ")")
  return T.parse_response(out)
end

T.test("fields and a file stored on disk (a small body, not streamed)", function()
  local src = T.tmpdir() .. "/small.bin"
  local data = T.random_bytes(3000, 7)
  T.write_file(src, data)
  local r = curl("/upload", "-F title=hello -F " .. T.q("doc=@" .. src .. ";filename=a b.bin"))
  T.eq(r.status, 200)
  T.eq(r.body, "hello doc a b.bin 3000\n")
  local f = last.files[1]
  T.eq(f.content_type, "application/octet-stream")
  T.eq(T.read_file(f.path), data, "the stored file")
end)

T.test("a streamed 3 MB file with fields around it", function()
  local src = T.tmpdir() .. "/mid.bin"
  local data = T.random_bytes(3 * 1024 * 1024, 11)
  T.write_file(src, data)
  local r = curl("/upload", "-F title=first -F " .. T.q("doc=@" .. src) .. " -F tail=x")
  T.eq(r.status, 200)
  T.eq(r.body, "first doc mid.bin " .. #data .. "\n")
  T.eq(T.adler32(T.read_file(last.files[1].path)), T.adler32(data), "the stored file")
  T.eq(last.fields.tail, "x")
end)

T.test("limits: a file over max_file_size and too many parts get 413", function()
  local src = T.tmpdir() .. "/huge.bin"
  os.execute("truncate -s 5M " .. T.q(src))
  local r = curl("/upload", "-F title=x -F " .. T.q("doc=@" .. src))
  T.eq(r.status, 413)
  T.eq(r.body, "file too large\n")
  local args = {}
  for i = 1, 11 do
    args[#args + 1] = "-F f" .. i .. "=v"
  end
  r = curl("/upload", table.concat(args, " "))
  T.eq(r.status, 413)
  T.eq(r.body, "too many parts\n")
end)

T.test("not multipart: 415; a cut body: 400", function()
  T.eq(curl("/upload", "--data a=b").status, 415)
  local r = curl("/upload", "-H 'Content-Type: multipart/form-data; boundary=XyZ' "
                 .. "--data-binary " .. T.q("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv"))
  T.eq(r.status, 400)
  T.match(r.body, "ended before its closing boundary")
end)

T.test("the parser finds boundaries split at every chunk edge", function()
  local body = "preamble\r\n--B0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
    .. "one\r\n--B0und\r\n--B0undary\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
    .. "Content-Type: text/plain\r\n\r\nfile\r\ndata\r\n--B0undary--\r\nepilogue"
  for size = 1, 17 do
    local got = {}
    local p = multipart.new("B0undary", { on_data = function(_, c) got[#got + 1] = c end })
    for i = 1, #body, size do
      assert(p:feed(body:sub(i, i + size - 1)))
    end
    local result = assert(p:finish())
    T.eq(result.fields.a, "one\r\n--B0und", "field with chunks of " .. size)
    T.eq(table.concat(got), "file\r\ndata", "file with chunks of " .. size)
    T.eq(result.files[1].content_type, "text/plain")
  end
end)

local function status_kb(field)
  return tonumber(T.read_file("/proc/self/status"):match(field .. ":%s*(%d+) kB"))
end

T.test("a 1 GiB upload with curl -F: parsed as it streams, bounded memory", function()
  local src = T.tmpdir() .. "/gig.bin"
  os.execute("truncate -s 1G " .. T.q(src))
  collectgarbage()
  local rss_before = status_kb("VmRSS")
  local t0 = os.time()
  local r = curl("/big", "-F note=big -F " .. T.q("file=@" .. src), 120)
  os.remove(src)
  T.eq(r.status, 200)
  T.eq(r.body, "got 1073741824 bytes in 1 file(s), note=big\n")
  local peak = status_kb("VmHWM")
  print(string.format("1 GiB in %d s; RSS before %d kB, peak %d kB", os.time() - t0, rss_before, peak))
  T.ok(peak - rss_before < 128 * 1024, "peak RSS grew by " .. (peak - rss_before) .. " kB")
end)

T.run()
