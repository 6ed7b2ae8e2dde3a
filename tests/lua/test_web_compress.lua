-- mongoose.web.compress with curl and python3's zlib as clients: gzip and
-- deflate chosen by Accept-Encoding (q-values), a minimum size, types that
-- are not compressed, Vary: Accept-Encoding, and a chunked reply
-- compressed as it streams (each write arrives, decompressible, before
-- the reply ends).
local T = require("testlib")
local P = require("testpy")
local web = require("mongoose.web")

if not web.compress.available() then
  T.skip("zlib (libz.so.1) cannot be loaded")
end

local mgr = T.logging_manager({ log_level = "info" })
local text = string.rep("the quick brown fox jumps over the lazy dog\n", 200)
local app = web.new()
app:use(web.compress.new({ min_size = 1000 }))
app:use(web.cors.new({ credentials = true, origins = { "http://o.example" } }))
app:get("/text", function() return 200, text, { ["Content-Type"] = "text/plain" } end)
app:get("/small", function() return 200, "tiny", { ["Content-Type"] = "text/plain" } end)
app:get("/png", function() return 200, text, { ["Content-Type"] = "image/png" } end)
app:get("/json", function() return 200, { data = text } end)
app:get("/stream", function(_, res)
  res:begin(200, { ["Content-Type"] = "text/plain" })
  res:write("first part\n")
  mgr:set_timeout(400, function()
    res:write("second part\n")
    res:finish("end\n")
  end)
end)
local listener, base, curl = require("testhttp").web_app(mgr, app)
local port = listener:port()


T.test("gzip for a client that accepts it; curl --compressed decodes it", function()
  local r = curl("/text", "-H 'Accept-Encoding: gzip'")
  T.eq(r.headers["content-encoding"], "gzip")
  T.eq(r.headers["vary"], "Accept-Encoding")
  T.ok(#r.body < #text / 10, "compressed to " .. #r.body .. " bytes")
  T.eq(r.body:sub(1, 2), "\31\139", "gzip magic")
  local out = T.curl(mgr, "--compressed -s " .. T.q(base .. "/text"))
  T.eq(out, text, "curl --compressed decodes it")
end)

T.test("deflate by q-values, none for q=0 or no Accept-Encoding", function()
  local out = P.check(mgr, P.HTTP .. [[
import http.client, zlib
for ae in ["gzip;q=0.5, deflate", "gzip;q=0, deflate;q=0", "", "br", "*"]:
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("GET", "/text", headers={"Accept-Encoding": ae} if ae else {})
    r = c.getresponse()
    body = r.read()
    enc = r.getheader("Content-Encoding")
    if enc == "deflate":
        body = zlib.decompress(body)
    elif enc == "gzip":
        body = zlib.decompress(body, 31)
    print(repr(ae), enc, r.getheader("Vary"), len(body))
    c.close()
]], port)
  local n = #text
  T.match(out, "'gzip;q=0.5, deflate' deflate Accept%-Encoding " .. n .. "\n")
  T.match(out, "'gzip;q=0, deflate;q=0' None Accept%-Encoding " .. n .. "\n")
  T.match(out, "'' None Accept%-Encoding " .. n .. "\n")
  T.match(out, "'br' None Accept%-Encoding " .. n .. "\n")
  T.match(out, "'%*' gzip Accept%-Encoding " .. n .. "\n")
end)

T.test("small bodies and images are sent as they are; JSON is compressed", function()
  local r = curl("/small", "-H 'Accept-Encoding: gzip'")
  T.eq(r.headers["content-encoding"], nil)
  T.eq(r.body, "tiny")
  r = curl("/png", "-H 'Accept-Encoding: gzip'")
  T.eq(r.headers["content-encoding"], nil)
  r = curl("/json", "-H 'Accept-Encoding: gzip' -H 'Origin: http://o.example'")
  T.eq(r.headers["content-encoding"], "gzip")
  T.eq(r.headers["vary"], "Accept-Encoding, Origin", "Vary merged with CORS's")
end)

T.test("a chunked reply is compressed as it streams", function()
  local out = P.check(mgr, P.HTTP .. [[
import http.client, zlib, time
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("GET", "/stream", headers={"Accept-Encoding": "gzip"})
r = c.getresponse()
print(r.getheader("Content-Encoding"), r.getheader("Transfer-Encoding"))
d = zlib.decompressobj(31)
t0 = time.time()
first = d.decompress(r.read1(65536))
print("early:", repr(first), "after %.1f s" % (time.time() - t0))
rest = r.read()
print("rest:", repr(d.decompress(rest) + d.flush()))
]], port)
  T.match(out, "^gzip chunked\n")
  T.match(out, "early: b'first part\\n' after 0%.[0-2] s\n", "the first write arrived before the rest")
  T.match(out, "rest: b'second part\\nend\\n'\n")
end)

T.run()
