-- The static file server (res:serve_dir, res:serve_file) against real
-- clients (curl, python3): RFC 9110's validators and conditional requests
-- (ETag, Last-Modified, If-None-Match, If-Modified-Since, If-Match,
-- If-Unmodified-Since, If-Range), byte ranges, 304 and 416 heads,
-- compressed variants with Vary, MIME types, and the safe defaults with
-- their options (no listing, no dotfiles, no links out of the root, index
-- files, SPA fallback, Cache-Control patterns). Sending big files, slow
-- readers and descriptors are test_static_io.lua's.
local T = require("testlib")
local mongoose = require("mongoose")
local response = require("mongoose.response")

local mgr = assert(mongoose.new_manager())
T.on_exit(function()
  mgr:close()
end)

---------------------------------------------------------------------------
-- The tree served
---------------------------------------------------------------------------

local top = T.tmpdir()
local www = top .. "/www"
local function put(rel, data)
  T.write_file(www .. "/" .. rel, data)
end
local function sh(cmd)
  local _, rc = T.run_client(nil, cmd)
  assert(rc == 0, "command failed: " .. cmd)
end
sh("mkdir -p " .. T.q(www .. "/sub/deeper") .. " " .. T.q(www .. "/docs") .. " " .. T.q(www .. "/assets")
   .. " " .. T.q(www .. "/.git") .. " " .. T.q(top .. "/outside") .. " " .. T.q(top .. "/spa/assets"))
put("index.html", "<h1>home</h1>\n")
put("a.txt", "0123456789abcdef")
put("empty.txt", "")
put("app.wasm", "\0asm")
put("mod.mjs", "export {}")
put("img.webp", "RIFF")
put("img.avif", "avif")
put("font.woff2", "wOF2")
put("data.json", "{}")
put("app.js.map", "{}")
put("thing.xyz", "?")
put("style.css", "body{}")
put("style.css.gz", "GZ-BYTES")
put("style.css.br", "BR-BYTES")
put("only.js", "plain js")
put("only.js.gz", "GZ-ONLY")
put("plain.js", "no variants")
put("name with space.txt", "spaced")
put(".env", "SECRET=1")
put(".git/config", "[core]")
put("sub/c.txt", "nested")
put("sub/.hidden", "hidden")
put("sub/<b>&.txt", "escaped")
put("docs/index.htm", "<p>docs</p>")
put("assets/app.3f9a.js", "hashed")
T.write_file(top .. "/secret.txt", "TOP SECRET")
T.write_file(top .. "/outside/file.txt", "OUTSIDE")
T.write_file(top .. "/spa/index.html", "<div id=app></div>")
T.write_file(top .. "/spa/assets/app.js", "spa js")
sh("cd " .. T.q(www) .. " && ln -s a.txt link_in.txt && ln -s ../secret.txt link_out.txt && ln -s ../outside link_dir"
   .. " && ln -s .env visible_env")
-- Old enough that Last-Modified is a strong validator (If-Range by date).
sh("find " .. T.q(top) .. " -exec touch -h -d @1600000000 {} +")
local LAST_MODIFIED = "Sun, 13 Sep 2020 12:26:40 GMT"

---------------------------------------------------------------------------
-- Servers: one listener per set of options
---------------------------------------------------------------------------

local last_res
local function server(fn)
  local l = assert(mgr:http_listen("http://127.0.0.1:0", fn, {
    on_response = function(res)
      last_res = { status = res.status, bytes = res.bytes }
    end,
  }))
  return "http://127.0.0.1:" .. l:port()
end

local function dir_server(opts)
  return server(function(req, res)
    return res:serve_dir(www, opts)
  end)
end

local BASE = dir_server(nil)
local FILE = server(function(req, res)
  if req.path == "/missing" then
    return res:serve_file(www .. "/nope.txt")
  elseif req.path == "/dir" then
    return res:serve_file(www .. "/sub")
  end
  return res:serve_file(www .. "/style.css", { headers = { ["X-Served"] = "file" } })
end)

-- curl -i (or -I for HEAD) with headers; returns the parsed response.
local function fetch(base, path, hdrs, method, extra)
  local args = (method == "HEAD" and "-I" or "-i") .. " --path-as-is " .. (extra or "")
  if method and method ~= "HEAD" then
    args = args .. " -X " .. method
  end
  for _, h in ipairs(hdrs or {}) do
    args = args .. " -H " .. T.q(h)
  end
  local out, rc, err = T.curl(mgr, args .. " " .. T.q(base .. path))
  T.eq(rc, 0, "curl exit status for " .. path .. " (" .. err .. ")")
  return T.ok(T.parse_response(out), "a response for " .. path)
end

-- The head's lines for name (lower-case), all of them.
local function lines_of(r, name)
  local found = {}
  for n, v in r.head:gmatch("\r\n([^:\r\n]+):([^\r\n]*)") do
    if n:lower() == name then
      found[#found + 1] = v
    end
  end
  return found
end

-- No header value with trailing blanks (the old 304's "Content-Length: 0   ").
local function no_padding(r, what)
  for line in (r.head .. "\r\n"):gmatch("([^\r\n]*)\r\n") do
    T.ok(not line:find("[ \t]$"), what .. ": a header line ends with blanks: '" .. line .. "'")
  end
end

---------------------------------------------------------------------------
-- Validators and conditional requests
---------------------------------------------------------------------------

T.test("200: Content-Type, Content-Length, ETag, Last-Modified, Accept-Ranges, Date", function()
  local r = fetch(BASE, "/a.txt")
  T.eq(r.status, 200)
  T.eq(r.body, "0123456789abcdef")
  T.eq(r.headers["content-type"], "text/plain; charset=utf-8")
  T.eq(r.headers["content-length"], "16")
  T.match(r.headers["etag"], '^"[%x]+%-[%x]+"$', "a strong ETag")
  T.eq(r.headers["last-modified"], LAST_MODIFIED)
  T.eq(r.headers["accept-ranges"], "bytes")
  T.match(r.headers["date"], "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", "Date")
  T.eq(r.headers["vary"], nil, "no Vary without a variant")
  no_padding(r, "200")
  T.eq(last_res.status, 200, "res.status")
  T.eq(last_res.bytes, 16, "res.bytes")
end)

T.test("304 for a matching If-None-Match: ETag, Cache-Control and Vary, no Content-Length, no body", function()
  local url = dir_server({ cache_control = "max-age=60" })
  local etag = fetch(url, "/style.css").headers["etag"]
  local r = fetch(url, "/style.css", { "If-None-Match: " .. etag })
  T.eq(r.status, 304)
  T.eq(r.body, "")
  T.eq(r.headers["etag"], etag, "ETag (RFC 9110 15.4.5)")
  T.eq(r.headers["cache-control"], "max-age=60")
  T.eq(r.headers["vary"], "Accept-Encoding", "Vary: the resource has variants")
  T.eq(#lines_of(r, "content-length"), 0, "no Content-Length")
  T.eq(#lines_of(r, "content-type"), 0, "no Content-Type")
  T.eq(#lines_of(r, "content-encoding"), 0, "no Content-Encoding")
  no_padding(r, "304")
  T.eq(last_res.status, 304, "res.status")
  T.eq(last_res.bytes, 0, "res.bytes")
end)

T.test("If-None-Match: a list, a weak W/ tag and * give 304; other tags 200", function()
  local etag = fetch(BASE, "/a.txt").headers["etag"]
  for _, value in ipairs({ '"x", ' .. etag .. ', "y"', "W/" .. etag, "*", ' ' .. etag .. ' ' }) do
    T.eq(fetch(BASE, "/a.txt", { "If-None-Match: " .. value }).status, 304, "If-None-Match: " .. value)
  end
  T.eq(fetch(BASE, "/a.txt", { 'If-None-Match: "x"', "If-None-Match: " .. etag }).status, 304,
       "a list over two lines")
  local r = fetch(BASE, "/a.txt", { 'If-None-Match: "other", W/"x"' })
  T.eq(r.status, 200)
  T.eq(r.body, "0123456789abcdef")
  T.eq(fetch(BASE, "/a.txt", { "If-None-Match: " .. etag }, "HEAD").status, 304, "HEAD")
end)

T.test("If-Modified-Since: 304 unless modified since; an invalid date or an If-None-Match overrides it", function()
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: " .. LAST_MODIFIED }).status, 304, "its own date")
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: Fri, 01 Jan 2021 00:00:00 GMT" }).status, 304, "later")
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: Saturday, 12-Sep-20 00:00:00 GMT" }).status, 200,
       "modified since (RFC 850 date)")
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: Sun Sep 13 12:26:40 2020" }).status, 304, "asctime date")
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: not a date" }).status, 200, "invalid: ignored")
  T.eq(fetch(BASE, "/a.txt", { "If-Modified-Since: " .. LAST_MODIFIED, 'If-None-Match: "other"' }).status,
       200, "If-None-Match decides")
  local r = fetch(BASE, "/a.txt", { "If-Modified-Since: " .. LAST_MODIFIED })
  T.ok(r.headers["etag"], "the 304 has the ETag")
  T.eq(#lines_of(r, "content-length"), 0, "no Content-Length")
end)

T.test("If-Match and If-Unmodified-Since: 412 when they fail, the file when they hold", function()
  local etag = fetch(BASE, "/a.txt").headers["etag"]
  local r = fetch(BASE, "/a.txt", { 'If-Match: "other"' })
  T.eq(r.status, 412)
  T.eq(r.body, "412 Precondition Failed\n")
  T.eq(fetch(BASE, "/a.txt", { "If-Match: W/" .. etag }).status, 412, "weak tags never match If-Match")
  T.eq(fetch(BASE, "/a.txt", { "If-Match: " .. etag }).status, 200)
  T.eq(fetch(BASE, "/a.txt", { "If-Match: *" }).status, 200)
  T.eq(fetch(BASE, "/a.txt", { "If-Unmodified-Since: Sat, 12 Sep 2020 00:00:00 GMT" }).status, 412)
  T.eq(fetch(BASE, "/a.txt", { "If-Unmodified-Since: " .. LAST_MODIFIED }).status, 200)
  T.eq(fetch(BASE, "/a.txt", { "If-Unmodified-Since: Sat, 12 Sep 2020 00:00:00 GMT",
                               "If-Match: " .. etag }).status, 200, "If-Match decides")
end)

---------------------------------------------------------------------------
-- Ranges
---------------------------------------------------------------------------

T.test("Range: first-last, first- and a suffix range bytes=-10 give 206 with Content-Range", function()
  local cases = {
    { "bytes=2-5", "2345", "bytes 2-5/16" },
    { "bytes=10-", "abcdef", "bytes 10-15/16" },
    { "bytes=-10", "6789abcdef", "bytes 6-15/16" },
    { "bytes=-100", "0123456789abcdef", "bytes 0-15/16" },
    { "bytes=14-99", "ef", "bytes 14-15/16" },
  }
  for _, c in ipairs(cases) do
    local r = fetch(BASE, "/a.txt", { "Range: " .. c[1] })
    T.eq(r.status, 206, c[1])
    T.eq(r.body, c[2], c[1])
    T.eq(r.headers["content-range"], c[3], c[1])
    T.eq(r.headers["content-length"], tostring(#c[2]), c[1])
    T.ok(r.headers["etag"] and r.headers["last-modified"], c[1] .. ": validators")
  end
  T.eq(last_res.status, 206, "res.status")
  T.eq(last_res.bytes, 2, "res.bytes")
end)

T.test("Range: unsatisfiable gives 416 with bytes */size; invalid ones and other units the whole file", function()
  for _, v in ipairs({ "bytes=16-", "bytes=100-200", "bytes=-0" }) do
    local r = fetch(BASE, "/a.txt", { "Range: " .. v })
    T.eq(r.status, 416, v)
    T.eq(r.headers["content-range"], "bytes */16", v)
    no_padding(r, v)
  end
  for _, v in ipairs({ "bytes=5-2", "bytes=x-y", "items=0-3", "bytes 0-3" }) do
    local r = fetch(BASE, "/a.txt", { "Range: " .. v })
    T.eq(r.status, 200, v)
    T.eq(r.body, "0123456789abcdef", v)
  end
  local r = fetch(BASE, "/empty.txt", { "Range: bytes=0-" })
  T.eq(r.status, 200, "an empty file is sent whole")
  T.eq(r.headers["content-length"], "0")
end)

T.test("several ranges: coalesced into one 206 when they touch, else the whole file (200)", function()
  local r = fetch(BASE, "/a.txt", { "Range: bytes=0-3, 2-7" })
  T.eq(r.status, 206)
  T.eq(r.body, "01234567")
  T.eq(r.headers["content-range"], "bytes 0-7/16")
  r = fetch(BASE, "/a.txt", { "Range: bytes=0-1, 4-5" })
  T.eq(r.status, 200, "no multipart/byteranges: the whole file")
  T.eq(r.body, "0123456789abcdef")
end)

T.test("If-Range: a strong ETag or the exact Last-Modified honours Range; a weak or stale one sends it all", function()
  local etag = fetch(BASE, "/a.txt").headers["etag"]
  local function status(if_range)
    return fetch(BASE, "/a.txt", { "Range: bytes=0-1", "If-Range: " .. if_range }).status
  end
  T.eq(status(etag), 206, "its ETag")
  T.eq(status('"stale"'), 200, "another ETag")
  T.eq(status("W/" .. etag), 200, "a weak ETag")
  T.eq(status(LAST_MODIFIED), 206, "its Last-Modified")
  T.eq(status("Sat, 12 Sep 2020 00:00:00 GMT"), 200, "another date")
end)

T.test("HEAD: the headers of GET without a body; Range ignored", function()
  local r = fetch(BASE, "/a.txt", nil, "HEAD")
  T.eq(r.status, 200)
  T.eq(r.body, "")
  T.eq(r.headers["content-length"], "16")
  T.ok(r.headers["etag"] and r.headers["last-modified"], "validators")
  r = fetch(BASE, "/a.txt", { "Range: bytes=0-1" }, "HEAD")
  T.eq(r.status, 200, "Range is for GET only (RFC 9110 14.2)")
  T.eq(last_res.bytes, 0, "res.bytes of a HEAD reply")
  local out = T.run_client(mgr, T.q(T.python) .. " -c " .. T.q([[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
for method in ("HEAD", "GET", "HEAD"):
    c.request(method, "/a.txt")
    r = c.getresponse()
    print(method, r.status, len(r.read()))
]]) .. " " .. BASE:match("%d+$"))
  T.eq(out, "HEAD 200 0\nGET 200 16\nHEAD 200 0\n", "HEAD and GET on one connection")
end)

---------------------------------------------------------------------------
-- Compressed variants
---------------------------------------------------------------------------

T.test("precompressed variants: .br and .gz by Accept-Encoding, with Vary on every reply of the resource", function()
  local r = fetch(BASE, "/style.css", { "Accept-Encoding: gzip, br" })
  T.eq(r.body, "BR-BYTES", "br preferred")
  T.eq(r.headers["content-encoding"], "br")
  T.eq(r.headers["content-type"], "text/css; charset=utf-8", "the type of the original")
  T.eq(r.headers["vary"], "Accept-Encoding")
  local br_etag = r.headers["etag"]
  r = fetch(BASE, "/style.css", { "Accept-Encoding: gzip" })
  T.eq(r.body, "GZ-BYTES")
  T.eq(r.headers["content-encoding"], "gzip")
  T.ok(r.headers["etag"] ~= br_etag, "each variant has its own ETag")
  T.eq(fetch(BASE, "/style.css", { "Accept-Encoding: br;q=0.2, gzip;q=0.9" }).body, "GZ-BYTES", "q-values")
  r = fetch(BASE, "/style.css")
  T.eq(r.body, "body{}", "no Accept-Encoding: identity")
  T.eq(r.headers["content-encoding"], nil)
  T.eq(r.headers["vary"], "Accept-Encoding", "Vary on the identity reply too")
  r = fetch(BASE, "/style.css", { "Accept-Encoding: br", "If-None-Match: " .. br_etag })
  T.eq(r.status, 304, "304 for the br variant's ETag")
  T.eq(r.headers["vary"], "Accept-Encoding", "Vary on the 304")
  r = fetch(BASE, "/style.css", { "Accept-Encoding: br", "Range: bytes=0-1" })
  T.eq(r.status, 206)
  T.eq(r.body, "BR", "a range of the variant")
  T.eq(fetch(BASE, "/only.js", { "Accept-Encoding: br, gzip" }).body, "GZ-ONLY", "only a .gz")
  T.eq(fetch(BASE, "/plain.js", { "Accept-Encoding: br, gzip" }).headers["vary"], nil, "no variant, no Vary")
  r = fetch(BASE, "/style.css.gz")
  T.eq(r.headers["content-type"], "application/gzip", "the .gz file itself")
  T.eq(r.headers["content-encoding"], nil)
end)

T.test("precompressed = false: variants are not used, no Vary; a list picks codings", function()
  local off = dir_server({ precompressed = false })
  local r = fetch(off, "/style.css", { "Accept-Encoding: br, gzip" })
  T.eq(r.body, "body{}")
  T.eq(r.headers["vary"], nil)
  local gz = dir_server({ precompressed = { "gzip" } })
  T.eq(fetch(gz, "/style.css", { "Accept-Encoding: br, gzip" }).body, "GZ-BYTES")
end)

---------------------------------------------------------------------------
-- MIME types
---------------------------------------------------------------------------

T.test("MIME types: wasm, mjs, webp, avif, woff2, json, map; unknown is octet-stream; mime_types adds", function()
  local cases = {
    { "/app.wasm", "application/wasm" }, { "/mod.mjs", "text/javascript; charset=utf-8" },
    { "/img.webp", "image/webp" }, { "/img.avif", "image/avif" }, { "/font.woff2", "font/woff2" },
    { "/data.json", "application/json" }, { "/app.js.map", "application/json" },
    { "/index.html", "text/html; charset=utf-8" }, { "/thing.xyz", "application/octet-stream" },
  }
  for _, c in ipairs(cases) do
    T.eq(fetch(BASE, c[1]).headers["content-type"], c[2], c[1])
  end
  local custom = dir_server({ mime_types = { xyz = "application/x-thing", json = "text/json" } })
  T.eq(fetch(custom, "/thing.xyz").headers["content-type"], "application/x-thing")
  T.eq(fetch(custom, "/data.json").headers["content-type"], "text/json", "overrides the table")
  local str = dir_server({ mime_types = "xyz=text/x-xyz" })
  T.eq(fetch(str, "/thing.xyz").headers["content-type"], "text/x-xyz", "the string form")
  local typed = dir_server({ headers = { ["Content-Type"] = "text/x-forced" } })
  local r = fetch(typed, "/a.txt")
  T.eq(#lines_of(r, "content-type"), 1, "one Content-Type")
  T.eq(r.headers["content-type"], "text/x-forced", "a Content-Type of opts.headers wins")
end)

---------------------------------------------------------------------------
-- Safe defaults and their options
---------------------------------------------------------------------------

T.test("dotfiles: 404 by default (also through a link), served with dotfiles = true", function()
  for _, p in ipairs({ "/.env", "/.git/config", "/sub/.hidden", "/%2eenv", "/visible_env" }) do
    local r = fetch(BASE, p)
    T.eq(r.status, 404, p)
    T.ok(not r.body:find("SECRET", 1, true) and not r.body:find("core", 1, true), p .. ": nothing leaks")
  end
  local open = dir_server({ dotfiles = true })
  T.eq(fetch(open, "/.env").body, "SECRET=1")
  T.eq(fetch(open, "/.git/config").body, "[core]")
  T.eq(fetch(open, "/visible_env").body, "SECRET=1")
end)

T.test("no directory listing by default (404); listing = true lists, escaped, without dotfiles", function()
  local r = fetch(BASE, "/sub/")
  T.eq(r.status, 404, "no listing")
  T.ok(not r.body:find("c.txt", 1, true), "no names")
  local lst = dir_server({ listing = true })
  r = fetch(lst, "/sub/")
  T.eq(r.status, 200)
  T.eq(r.headers["content-type"], "text/html; charset=utf-8")
  T.match(r.body, "Index of /sub/", "title")
  T.match(r.body, '<a href="c%.txt">c%.txt</a>', "a file")
  T.match(r.body, '<a href="deeper/">deeper/</a>', "a directory")
  T.match(r.body, '<a href="%%3Cb%%3E%%26%.txt">&lt;b&gt;&amp;%.txt</a>', "names escaped")
  T.match(r.body, '<a href="%.%./">%.%./</a>', "a link up")
  T.ok(not r.body:find(".hidden", 1, true), "no dotfiles listed")
  T.eq(fetch(lst, "/").status, 200, "the root has index.html")
  T.eq(fetch(lst, "/").body, "<h1>home</h1>\n", "an index file comes before a listing")
end)

T.test("symlinks: inside the root followed, out of it refused (404); 'any' follows, 'none' refuses all", function()
  T.eq(fetch(BASE, "/link_in.txt").body, "0123456789abcdef", "a link inside the root")
  for _, p in ipairs({ "/link_out.txt", "/link_dir/file.txt" }) do
    local r = fetch(BASE, p)
    T.eq(r.status, 404, p)
    T.ok(not r.body:find("SECRET", 1, true) and not r.body:find("OUTSIDE", 1, true), p .. ": nothing leaks")
  end
  local any = dir_server({ symlinks = "any" })
  T.eq(fetch(any, "/link_out.txt").body, "TOP SECRET")
  T.eq(fetch(any, "/link_dir/file.txt").body, "OUTSIDE")
  local none = dir_server({ symlinks = "none" })
  T.eq(fetch(none, "/link_in.txt").status, 404, "no links at all")
  T.eq(fetch(none, "/a.txt").status, 200)
end)

T.test("index: index.html by default, a list in order, false for none; a directory without '/' gets 301", function()
  T.eq(fetch(BASE, "/").body, "<h1>home</h1>\n")
  T.eq(fetch(BASE, "/docs/").status, 404, "no index.htm by default")
  local list = dir_server({ index = { "index.htm", "index.html" } })
  T.eq(fetch(list, "/docs/").body, "<p>docs</p>")
  T.eq(fetch(list, "/").body, "<h1>home</h1>\n", "the next name of the list")
  T.eq(fetch(dir_server({ index = false }), "/").status, 404, "index = false")
  local r = fetch(BASE, "/sub?x=1")
  T.eq(r.status, 301)
  T.eq(r.headers["location"], "/sub/?x=1", "Location keeps the query")
  T.eq(fetch(BASE, "/a.txt/").status, 404, "a file with a trailing '/'")
  T.eq(fetch(BASE, "//sub").headers["location"], "/sub/", "never a protocol-relative Location")
  T.eq(fetch(BASE, "/%5C/sub").status, 404, "a backslash is a name")
end)

T.test("spa_fallback: unknown paths without an extension serve index.html; others as usual", function()
  local spa = server(function(req, res)
    return res:serve_dir(top .. "/spa", { spa_fallback = true, cache_control = { { "/index.html", "no-cache" } } })
  end)
  for _, p in ipairs({ "/", "/users/42", "/settings/" }) do
    local r = fetch(spa, p)
    T.eq(r.status, 200, p)
    T.eq(r.body, "<div id=app></div>", p)
    T.eq(r.headers["content-type"], "text/html; charset=utf-8", p)
    T.eq(r.headers["cache-control"], "no-cache", p .. ": the rules of the fallback file")
  end
  T.eq(fetch(spa, "/assets/app.js").body, "spa js", "a real file")
  T.eq(fetch(spa, "/assets/missing.js").status, 404, "a missing file with an extension")
  T.eq(fetch(spa, "/.env").status, 404, "a dotfile")
end)

T.test("cache_control: one value for all, or the first pattern that matches; opts.headers wins", function()
  local rules = dir_server({ cache_control = {
    { "/assets/*", "public, max-age=31536000, immutable" },
    { "*.html", "no-cache" },
  } })
  T.eq(fetch(rules, "/assets/app.3f9a.js").headers["cache-control"], "public, max-age=31536000, immutable")
  T.eq(fetch(rules, "/index.html").headers["cache-control"], "no-cache")
  T.eq(fetch(rules, "/").headers["cache-control"], "no-cache", "the index file's path")
  T.eq(fetch(rules, "/a.txt").headers["cache-control"], nil, "no rule")
  local all = dir_server({ cache_control = "max-age=60" })
  T.eq(fetch(all, "/a.txt").headers["cache-control"], "max-age=60")
  local user = dir_server({ cache_control = "max-age=60", headers = { ["Cache-Control"] = "private" } })
  local r = fetch(user, "/a.txt")
  T.eq(#lines_of(r, "cache-control"), 1)
  T.eq(r.headers["cache-control"], "private")
end)

T.test("paths: '..' above the root and %00 give 400; encoded names are found; other methods 405", function()
  for _, p in ipairs({ "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                       "/a%00.txt", "/a%zz" }) do
    local r = fetch(BASE, p)
    T.eq(r.status, 400, p)
    T.ok(not r.body:find("SECRET", 1, true), p)
  end
  T.eq(fetch(BASE, "/sub/../a.txt").body, "0123456789abcdef", "'..' inside the root")
  T.eq(fetch(BASE, "/name%20with%20space.txt").body, "spaced")
  local r = fetch(BASE, "/a.txt", nil, "POST")
  T.eq(r.status, 405)
  T.eq(r.headers["allow"], "GET, HEAD")
end)

T.test("serve_file: validators, conditions, ranges, variants; 404 for a missing file or a directory", function()
  local r = fetch(FILE, "/anything", { "Accept-Encoding: gzip" })
  T.eq(r.body, "GZ-BYTES")
  T.eq(r.headers["x-served"], "file")
  T.eq(r.headers["vary"], "Accept-Encoding")
  local etag = fetch(FILE, "/x").headers["etag"]
  T.eq(fetch(FILE, "/x", { "If-None-Match: " .. etag }).status, 304)
  r = fetch(FILE, "/x", { "Range: bytes=-2" })
  T.eq(r.status, 206)
  T.eq(r.body, "{}")
  T.eq(fetch(FILE, "/missing").status, 404)
  T.eq(fetch(FILE, "/dir").status, 404)
end)

T.test("fallthrough: nothing is sent for a missing file, the handler answers", function()
  local url = server(function(req, res)
    local ok, err = res:serve_dir(www, { fallthrough = true })
    if ok == false then
      return 404, "custom: " .. err, { ["Content-Type"] = "text/plain" }
    end
  end)
  T.eq(fetch(url, "/a.txt").body, "0123456789abcdef")
  local r = fetch(url, "/nope")
  T.eq(r.status, 404)
  T.eq(r.body, "custom: not found")
end)

T.test("options are checked, errors at the caller", function()
  local errs = {}
  local url = server(function(req, res)
    local bad = {
      { listing = "yes" }, { dotfiles = 1 }, { symlinks = "sometimes" }, { index = "a/b" },
      { index = { "ok", ".." } }, { index = 5 }, { cache_control = "a\r\nX: y" },
      { cache_control = { { "*" } } }, { cache_control = { "x" } }, { precompressed = { "lzma" } },
      { spa_fallback = "../x" }, { spa_fallback = "/abs" }, { mime_types = { ["a b"] = "x/y" } },
      { mime_types = 1 }, { typo = true }, { headers = 1 }, { path = 1 }, 42,
    }
    -- Called from a Lua function of this file (not straight from pcall).
    local function try(...)
      local ok, err = res:serve_dir(...)
      return ok, err
    end
    for i, o in ipairs(bad) do
      local ok, err = pcall(try, www, o)
      errs[i] = ok and "no error" or err
    end
    local ok, err = pcall(try, 42)
    errs[#errs + 1] = ok and "no error" or err
    return 200, "checked"
  end)
  T.eq(fetch(url, "/").body, "checked")
  T.eq(#errs, 19)
  for i, err in ipairs(errs) do
    T.match(err, "^[^:]*test_static%.lua:%d+: ", "error " .. i .. " points at the caller: " .. err)
  end
  T.match(errs[3], "symlinks must be")
  T.match(errs[15], "unknown option 'typo'")
  T.raises("max_entries must be", mgr.set_file_cache, mgr, { max_entries = -1 })
  local compiled = response.serve_options({ listing = true })
  T.eq(fetch(server(function(req, res) return res:serve_dir(www, compiled) end), "/sub/").status, 200,
       "compiled options")
end)

T.test("app:static: serve_dir's options under a prefix, the app's 404 for what is not there", function()
  local web = require("mongoose.web")
  local app = web.new({ not_found = function() return 404, "app 404\n" end })
  app:static("/files", www, { cache_control = "max-age=5", listing = true })
  local l = assert(app:listen(mgr, "http://127.0.0.1:0"))
  local url = "http://127.0.0.1:" .. l:port()
  local r = fetch(url, "/files/a.txt")
  T.eq(r.body, "0123456789abcdef")
  T.eq(r.headers["cache-control"], "max-age=5")
  T.match(fetch(url, "/files/sub/").body, "Index of /sub/")
  T.eq(fetch(url, "/files/sub").status, 301)
  T.eq(fetch(url, "/files/sub").headers["location"], "/files/sub/")
  T.eq(fetch(url, "/files/.env").body, "app 404\n")
  T.eq(fetch(url, "/files/nope.txt").body, "app 404\n")
  T.eq(fetch(url, "/files/%2e%2e/secret.txt").status, 400)
end)

T.run()
