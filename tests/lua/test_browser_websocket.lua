-- Headless Chromium's WebSocket against a ws_listen server: the page
-- opens /ws (Chromium offers permessage-deflate), the server sends a text
-- message and a 1 MiB binary message first, the page checks them and sends
-- text, binary, a 1 MiB text (with non-ASCII) and a 1 MiB binary message,
-- which the server echoes and the page compares; then it closes with 1000
-- and posts what it saw (ws.extensions, each message, the close) to
-- /report. ws.extensions must be what the server's 101 said: the same
-- upgrade request (Chromium's offer) is replayed from python to read the
-- 101's Sec-WebSocket-Extensions ("" today, "permessage-deflate..." once
-- the server negotiates it).
--
-- --dump-dom waits for the page's load event, which an image (/hold,
-- answered once the report is in) holds back while the messages travel
-- (no --virtual-time-budget: with it and a pending fetch, Chromium at times
-- stalled the page's WebSocket after its opening handshake).
-- Needs Debian's chromium (scripts/setup-deps.sh --with-test-tools).
local T = require("testlib")
local B = require("testbrowser")
local P = require("testpy")

B.need()

local PAGE = [[<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ws</title></head><body><pre id="log"></pre><img src="/hold" alt="">
<script>
const lines = [];
function log(s) { lines.push(s); document.getElementById("log").textContent = lines.join("\n"); }
function pattern(n, k) { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = (i * k) & 255; return a; }
function same(a, b) {
  if (typeof a === "string" || typeof b === "string") return a === b;
  a = new Uint8Array(a); b = new Uint8Array(b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function describe(m) { return typeof m === "string" ? "text " + m.length : "binary " + m.byteLength; }
const bigText = ("abcdefgh-\u00e9\u4e16\u{1F600}").repeat(65536);
const sent = ["hello from chromium", pattern(256, 1).buffer, bigText, pattern(1 << 20, 7).buffer];
const expected = ["welcome", pattern(1 << 20, 13).buffer].concat(sent);
let n = 0;
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  log("open");
  log("extensions " + (ws.extensions === "" ? "-" : ws.extensions));
  for (const m of sent) ws.send(m);
};
ws.onmessage = (e) => {
  const ok = n < expected.length && same(e.data, expected[n]);
  log("message " + (n + 1) + " " + (ok ? "ok" : "differs") + " " + describe(e.data));
  n++;
  if (n === expected.length) ws.close(1000, "done");
};
ws.onerror = () => log("error");
ws.onclose = (e) => {
  log("close " + e.code + " " + e.wasClean + " messages " + n);
  fetch("/report", { method: "POST", body: lines.join("\n") }).catch(() => {});
};
</script></body></html>
]]

local function pattern(n, k)
  local bit = require("bit")
  local t = {}
  for i = 0, n - 1 do
    t[#t + 1] = string.char(bit.band(i * k, 255))
  end
  return table.concat(t)
end

T.test("Chromium's WebSocket exchanges text, binary and 1 MiB messages both ways; ws.extensions is the 101's",
       function()
  local mgr = assert(require("mongoose").new_manager())
  local report, held, offer
  local server_got = {}
  local t0 = require("mongoose.core").millis()
  local timeline = {}
  local function mark(what)
    timeline[#timeline + 1] = (require("mongoose.core").millis() - t0) .. " ms " .. what
  end
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", {
    path = "/ws",
    max_message = 4 * 1024 * 1024,
    http = function(req, res)
      mark(req.method .. " " .. req.path)
      if req.path == "/" then
        return 200, PAGE, { ["Content-Type"] = "text/html; charset=utf-8" }
      elseif req.path == "/hold" then
        held = res
        mgr:set_timeout(40000, function() if held then held:send(404, "timeout\n") end end)
        return
      elseif req.path == "/report" then
        report = req:body()
        if held then
          held:send(404, "done\n")
          held = nil
        end
        return 200, "thanks\n"
      end
      return 404, "no\n"
    end,
    on_open = function(ws)
      mark("WebSocket open")
      offer = ws.request.headers["sec-websocket-extensions"]
      ws:send("welcome")
      ws:send(pattern(1024 * 1024, 13), "binary")
    end,
    on_message = function(ws, data, is_binary)
      server_got[#server_got + 1] = (is_binary and "binary " or "text ") .. #data
      mark("WebSocket message " .. server_got[#server_got])
      ws:send(data, is_binary and "binary" or "text")
    end,
  }))
  local base = "http://127.0.0.1:" .. l:port()
  local dom, rc, err = B.run(mgr, "--dump-dom " .. T.q(base .. "/"))
  mark("chromium exited " .. tostring(rc))
  if rc ~= 0 or not report then
    print("timeline:\n  " .. table.concat(timeline, "\n  ") .. "\nDOM: " .. dom:sub(1, 1000))
  end
  T.eq(rc, 0, "chromium exit status (stderr: " .. err:sub(-500) .. ")")
  T.ok(T.poll_until(mgr, function() return report ~= nil end, 10000),
       "the page's report (DOM: " .. dom:sub(1, 400) .. ")")
  print(report)
  local lines = {}
  for line in report:gmatch("[^\n]+") do
    lines[#lines + 1] = line
  end
  T.eq(lines[1], "open", "the WebSocket opened")
  local page_ext = lines[2]:match("^extensions (.*)$")
  T.ok(page_ext, "ws.extensions reported")
  local expect_kinds = { "text 7", "binary 1048576", "text 19", "binary 256", "text " .. (13 * 65536),
                         "binary 1048576" }
  for i, kind in ipairs(expect_kinds) do
    T.eq(lines[2 + i], "message " .. i .. " ok " .. kind, "message " .. i)
  end
  T.eq(lines[9], "close 1000 true messages 6", "closed cleanly with 1000")
  T.eq(#server_got, 4, "the server got the page's four messages")
  T.eq(server_got[3], "text " .. #(("abcdefgh-\195\169\228\184\150\240\159\152\128"):rep(65536)),
       "the 1 MiB text arrived as UTF-8")

  -- Chromium offers permessage-deflate; what did the server answer? The
  -- same offer, replayed, shows the 101's Sec-WebSocket-Extensions.
  T.match(offer, "permessage%-deflate", "Chromium offered permessage-deflate")
  local out = P.check(mgr, P.HTTP .. [[
key = base64.b64encode(os.urandom(16))
s = conn()
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key
          + b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: " + sys.argv[2].encode() + b"\r\n\r\n")
head = read_reply(s, lambda r: b"\r\n\r\n" in r).split(b"\r\n\r\n")[0].decode()
ext = "-"
for line in head.split("\r\n")[1:]:
    k, _, v = line.partition(":")
    if k.strip().lower() == "sec-websocket-extensions":
        ext = v.strip()
out("status", head.split("\r\n")[0])
out("ext", ext)
]], l:port() .. " " .. T.q(offer))
  local r = P.kv(out)
  T.match(r.status, "^HTTP/1.1 101", "the replayed upgrade")
  T.eq(page_ext, r.ext, "ws.extensions in the page is the server's Sec-WebSocket-Extensions ('-': none)")
  if r.ext == "-" then
    print("Chromium offered: " .. offer .. "; the server declined (no Sec-WebSocket-Extensions)")
  else
    T.match(r.ext, "^permessage%-deflate", "the agreed extension")
    print("Chromium offered: " .. offer .. "; agreed: " .. r.ext)
  end
  mgr:close()
end)

T.run()
