-- The TODO app (examples/todo_app.lua) end to end in headless Chromium:
-- the static page logs in (a session cookie), opens its EventSource, adds
-- an item through the REST API and shows it when the server's SSE event
-- comes back; a second browser (a fresh profile) logs in as someone else
-- and gets the list over REST; curl attaches a file (multipart) and the
-- access log on stderr has every request.
local T = require("testlib")
local E = require("testexamples")
local B = require("testbrowser")

B.need()
if not require("mongoose.web").body.have_json() then
  T.skip("lua-cjson is not installed (apt-get install lua-cjson)")
end

T.test("the TODO app works in Chromium", function()
  local port = T.free_port()
  local base = "http://127.0.0.1:" .. port
  local job, pidfile = E.start("todo_app.lua", "PORT=" .. port .. " UPLOAD_DIR=" .. T.q(T.tmpdir() .. "/up"))
  local ok, err = pcall(function()
    E.wait_until_serving(base .. "/")
    local dom = B.dump_dom(nil, base .. "/?user=chromium&add=buy-milk&once=1", 8000)
    T.match(dom, '<p id="status">logged in as chromium %(live%)</p>', "logged in, EventSource open")
    T.match(dom, '<li id="todo%-1" class=""><input type="checkbox"> <span>buy%-milk %(chromium%)</span></li>',
            "the item came back over SSE")
    dom = B.dump_dom(nil, base .. "/?user=second&once=1", 8000)
    T.match(dom, "logged in as second", "the second browser")
    T.match(dom, "<span>buy%-milk %(chromium%)</span>", "the list over REST")

    local jar = T.tmpdir() .. "/jar"
    local out, rc = T.sh(nil, "curl -sS -c " .. T.q(jar) .. " -H 'Content-Type: application/json' -d "
                         .. T.q('{"user":"curl"}') .. " " .. T.q(base .. "/login") .. " && echo && "
                         .. "curl -sS -b " .. T.q(jar) .. " -F 'file=@" .. T.source_dir
                         .. "/examples/todo/index.html' " .. T.q(base .. "/api/todos/1/attachment"))
    T.eq(rc, 0)
    T.match(out, '"attachment":{', "the attachment: " .. out)
    T.match(out, '"name":"index%.html"')
    out = T.sh(nil, "curl -sS -o /dev/null -w '%{http_code}' " .. T.q(base .. "/api/todos"))
    T.eq(out, "401", "the API without a session")
  end)
  local _, code, stderr = E.stop_and_wait(job, pidfile)
  if not ok then
    error(tostring(err) .. "\n--- server stderr:\n" .. (stderr or ""), 0)
  end
  T.eq(code, 0, "exit status after SIGTERM")
  T.match(stderr, '127%.0%.0%.1 %- chromium %[[^]]+%] "POST /api/todos HTTP/1%.1" 201 ')
  T.match(stderr, '"GET /events HTTP/1%.1" 200 ')
  T.match(stderr, '"POST /api/todos/1/attachment HTTP/1%.1" 200 ')
  T.match(stderr, '"GET /api/todos HTTP/1%.1" 401 ')
end)

T.run()
