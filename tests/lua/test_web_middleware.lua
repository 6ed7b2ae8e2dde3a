-- mongoose.web's middleware with curl as the client: the on_response hook
-- and the combined access log (the glue's own 413 and 431 included), CORS
-- preflights and headers kept on the listener's 500, JSON and form bodies
-- (400, 415), cookies (signed too), sessions, Basic and Bearer auth.
local T = require("testlib")
local web = require("mongoose.web")

if not web.body.have_json() then
  T.skip("lua-cjson is not installed (apt-get install lua-cjson)")
end

local mgr, logs = T.logging_manager({ log_level = "info" })
local SECRET = "0123456789abcdef-test-secret"
local records, lines = {}, {}

local app = web.new()
app:on_response(function(res) records[#records + 1] = res end)
app:on_response(web.log.access_log(function(line) lines[#lines + 1] = line end))
app:use(web.cors.new({ origins = { "http://allowed.example" }, credentials = true,
                       expose = { "X-Total" }, max_age = 600 }))
local sessions = web.session.new({ secret = SECRET })
app:use(sessions:middleware())
local admin = web.new()
admin:use(web.auth.basic_auth({ realm = "admin", check = function(u, p)
  return u == "alice" and p == "s3cret:x"
end }))
admin:get("/", function(req) return 200, "hello " .. req.user .. "\n" end)
app:mount("/admin", admin)
local api = web.new()
api:use(web.auth.bearer_auth({ check = function(token) return token == "tok-1" and "bot" end }))
api:get("/me", function(req) return 200, { user = req.user } end)
app:mount("/api", api)

app:get("/hello", function() return 200, "hello\n", { ["X-Total"] = "3" } end)
app:get("/fail", function() error("handler failure") end)
app:post("/echo", web.chain(web.body.json_body(), function(req)
  return 200, { got = req.json, path = "/a/b" }
end))
app:post("/form", function(req)
  local form, err, status = web.body.form(req)
  if not form then return status, err end
  return 200, form.a .. "|" .. table.concat(form.b, ",") .. "\n"
end)
app:get("/cookies", function(req, res)
  web.cookie.set(res, "plain", "v1", { path = "/", max_age = 60, http_only = true,
                                       same_site = "Strict", secure = true, domain = "127.0.0.1",
                                       expires = 0, partitioned = true })
  web.cookie.set_signed(res, "signed", "user42", SECRET, { path = "/" })
  return 200, "seen " .. (web.cookie.get(req, "a") or "-") .. " "
    .. (web.cookie.get_signed(req, "signed", SECRET) or "-") .. "\n"
end)
app:post("/login", function(req, res)
  local s = sessions:start(req, res)
  s.user = "bob"
  return 200, "logged in\n"
end)
app:get("/whoami", function(req)
  return 200, (req.session and req.session.user or "nobody") .. "\n"
end)
app:post("/logout", function(req, res)
  sessions:destroy(req, res)
  return 200, "bye\n"
end)

local _, _, curl = require("testhttp").web_app(mgr, app, { max_body = 1000, max_header_size = 2048 })


local function all_headers(head, name)
  local list = {}
  for v in head:gmatch("\r\n" .. name .. ":%s*([^\r\n]*)") do
    list[#list + 1] = v
  end
  return list
end

T.test("on_response sees each reply with status, bytes and duration; combined log", function()
  local n = #records
  curl("/hello", "-H 'User-Agent: test-agent' -H 'Referer: http://r.example/'")
  local rec = records[n + 1]
  T.eq(rec.status, 200)
  T.eq(rec.bytes, 6)
  T.ok(rec.duration >= 0 and rec.duration < 5000, "duration " .. tostring(rec.duration))
  T.match(lines[#lines], '^127%.0%.0%.1 %- %- %[%d%d/%a%a%a/%d%d%d%d:%d%d:%d%d:%d%d [+-]%d%d%d%d%] '
          .. '"GET /hello HTTP/1%.1" 200 6 "http://r%.example/" "test%-agent"$')
end)

T.test("the glue's own 413 and 431 reach on_response and the log", function()
  local n = #records
  local r = curl("/echo", "-X POST -H 'Content-Type: application/json' --data-binary "
                 .. T.q(string.rep("x", 5000)))
  T.eq(r.status, 413)
  T.ok(T.poll_until(mgr, function() return #records > n end, 2000), "a record for the 413")
  local rec = records[n + 1]
  T.eq(rec.status, 413)
  T.match(rec.rejected, ".", "the reason")
  T.eq(rec.bytes, #"413 Payload Too Large\n")
  T.match(lines[#lines], '^127%.0%.0%.1 %- %- %[.-%] "%-" 413 22 "%-" "%-"$')
  n = #records
  r = curl("/hello", "-H " .. T.q("X-Big: " .. string.rep("y", 4000)))
  T.eq(r.status, 431)
  T.ok(T.poll_until(mgr, function() return #records > n end, 2000), "a record for the 431")
  T.eq(records[n + 1].status, 431)
end)

T.test("CORS: a preflight is answered, replies get the headers, even the 500", function()
  local r = curl("/echo", "-X OPTIONS -H 'Origin: http://allowed.example' "
                 .. "-H 'Access-Control-Request-Method: POST' "
                 .. "-H 'Access-Control-Request-Headers: content-type'")
  T.eq(r.status, 204)
  T.eq(r.headers["access-control-allow-origin"], "http://allowed.example")
  T.eq(r.headers["access-control-allow-credentials"], "true")
  T.match(r.headers["access-control-allow-methods"], "POST")
  T.eq(r.headers["access-control-allow-headers"], "content-type")
  T.eq(r.headers["access-control-max-age"], "600")
  T.eq(r.headers["vary"], "Origin")
  r = curl("/hello", "-H 'Origin: http://allowed.example'")
  T.eq(r.headers["access-control-allow-origin"], "http://allowed.example")
  T.eq(r.headers["access-control-expose-headers"], "X-Total")
  r = curl("/hello", "-H 'Origin: http://evil.example'")
  T.eq(r.headers["access-control-allow-origin"], nil)
  r = curl("/echo", "-X OPTIONS -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST'")
  T.eq(r.status, 403)
  r = curl("/fail", "-H 'Origin: http://allowed.example'")
  T.eq(r.status, 500)
  T.eq(r.headers["access-control-allow-origin"], "http://allowed.example", "CORS kept on the 500")
  T.ok(T.find_log(logs, "handler failure", "error"))
end)

T.test("JSON bodies: parsed, 400 for bad JSON, 415 for another type", function()
  local r = curl("/echo", "-X POST -H 'Content-Type: application/json' --data-binary '{\"a\":[1,2]}'")
  T.eq(r.status, 200)
  T.ok(r.body == '{"got":{"a":[1,2]},"path":"/a/b"}' or r.body == '{"path":"/a/b","got":{"a":[1,2]}}', r.body)
  r = curl("/echo", "-X POST -H 'Content-Type: application/json' --data-binary '{bad'")
  T.eq(r.status, 400)
  T.match(r.body, '^{"error":"invalid JSON')
  r = curl("/echo", "-X POST -H 'Content-Type: text/plain' --data-binary 'x'")
  T.eq(r.status, 415)
end)

T.test("form bodies, with repeated keys", function()
  local r = curl("/form", "--data 'a=x%20y&b=1&b=2+3'")
  T.eq(r.body, "x y|1,2 3\n")
end)

T.test("cookies: read, Set-Cookie with every attribute, signed ones checked", function()
  local r = curl("/cookies", "-H 'Cookie: a=\"1\"; b=2'")
  T.eq(r.body, "seen 1 -\n")
  local set = all_headers(r.head, "Set%-Cookie")
  T.eq(#set, 2)
  T.eq(set[1], "plain=v1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=127.0.0.1; "
       .. "Path=/; Secure; HttpOnly; SameSite=Strict; Partitioned")
  local signed = set[2]:match("^signed=([^;]+)")
  T.match(signed, "^user42%.")
  r = curl("/cookies", "-H " .. T.q("Cookie: signed=" .. signed))
  T.eq(r.body, "seen - user42\n")
  r = curl("/cookies", "-H " .. T.q("Cookie: signed=" .. signed:gsub("^user42", "admin")))
  T.eq(r.body, "seen - -\n", "a forged value is refused")
  T.raises("cookie value must not", web.cookie.serialize, "a", "b;c")
end)

T.test("sessions: login sets a signed cookie, logout clears it", function()
  local jar = T.tmpdir() .. "/jar.txt"
  local r = curl("/whoami", "-b " .. T.q(jar) .. " -c " .. T.q(jar))
  T.eq(r.body, "nobody\n")
  r = curl("/login", "-X POST -b " .. T.q(jar) .. " -c " .. T.q(jar))
  T.match(all_headers(r.head, "Set%-Cookie")[1], "^sid=[^;]+; Max%-Age=86400; Path=/; HttpOnly; SameSite=Lax$")
  T.eq(curl("/whoami", "-b " .. T.q(jar) .. " -c " .. T.q(jar)).body, "bob\n")
  curl("/logout", "-X POST -b " .. T.q(jar) .. " -c " .. T.q(jar))
  T.eq(curl("/whoami", "-b " .. T.q(jar) .. " -c " .. T.q(jar)).body, "nobody\n")
end)

T.test("Basic and Bearer authentication", function()
  local r = curl("/admin/")
  T.eq(r.status, 401)
  T.eq(r.headers["www-authenticate"], 'Basic realm="admin", charset="UTF-8"')
  T.eq(curl("/admin/", "-u alice:wrong").status, 401)
  r = curl("/admin/", "-u 'alice:s3cret:x'")
  T.eq(r.status, 200)
  T.eq(r.body, "hello alice\n")
  T.match(lines[#lines], '^127%.0%.0%.1 %- alice ', "the user in the access log")
  r = curl("/api/me")
  T.eq(r.status, 401)
  T.eq(r.headers["www-authenticate"], 'Bearer realm="api"')
  r = curl("/api/me", "-H 'Authorization: Bearer nope'")
  T.eq(r.headers["www-authenticate"], 'Bearer realm="api", error="invalid_token"')
  r = curl("/api/me", "-H 'Authorization: Bearer tok-1'")
  T.eq(r.body, '{"user":"bot"}')
end)

T.run()
