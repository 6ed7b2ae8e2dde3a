-- mongoose.web.sse with real clients: Chromium's EventSource (events,
-- named events, ids, and the reconnection with Last-Event-ID after the
-- server ends a stream), python3 reading the raw text/event-stream
-- (format, retry, multi-line data, comments, heartbeats), and a peer that
-- does not read (backpressure: send() refuses once max_queued is
-- reached).
local T = require("testlib")
local P = require("testpy")
local B = require("testbrowser")
local web = require("mongoose.web")

B.need()
local mgr = T.logging_manager({ log_level = "info" })
local seen_last_ids = {}
local full = {}

local app = web.new()
app:get("/", function()
  return 200, [[<!doctype html><html><body><ul id="events"></ul><p id="state">waiting</p><script>
const list = document.getElementById('events');
const es = new EventSource('/events');
let n = 0;
function add(text) { const li = document.createElement('li'); li.textContent = text; list.appendChild(li); }
es.addEventListener('tick', e => {
  add('tick ' + e.data + ' id=' + e.lastEventId);
  if (++n === 5) { es.close(); document.getElementById('state').textContent = 'done'; }
});
es.onmessage = e => add('message ' + e.data);
</script></body></html>]], { ["Content-Type"] = "text/html" }
end)
app:get("/events", function(req, res)
  local last = tonumber(req:header("last-event-id") or "0")
  seen_last_ids[#seen_last_ids + 1] = req:header("last-event-id") or "-"
  local s = assert(web.sse.start(req, res, { retry = 50, heartbeat = 0 }))
  s:send("hello")
  for i = last + 1, last + 3 do
    s:send({ event = "tick", id = i, data = i })
  end
  if last == 0 then
    s:close() -- the browser reconnects, sending Last-Event-ID: 3
  end
end)
app:get("/raw", function(req, res)
  local s = assert(web.sse.start(req, res, { retry = 1000, heartbeat = 30 }))
  s:send({ event = "multi", id = "a1", data = "line1\nline2\r\nline3" })
  s:comment("just a comment")
  mgr:set_timeout(120, function() s:send("after heartbeats"); s:close() end)
end)
app:get("/flood", function(req, res)
  local s = assert(web.sse.start(req, res, { max_queued = 256 * 1024, heartbeat = 0 }))
  local chunk = string.rep("x", 16 * 1024)
  local sent = 0
  local timer
  timer = mgr:set_interval(2, function()
    for _ = 1, 16 do
      local ok, err = s:send(chunk)
      if not ok then
        full.err, full.sent, full.queued = err, sent, s:send_queued()
        timer:cancel()
        s:close()
        return
      end
      sent = sent + 1
    end
  end)
end)
local listener = assert(app:listen(mgr, "http://127.0.0.1:0"))
local port = listener:port()
local base = "http://127.0.0.1:" .. port

T.test("Chromium's EventSource gets the events and reconnects with Last-Event-ID", function()
  local dom = B.dump_dom(mgr, base .. "/", 5000)
  T.match(dom, '<p id="state">done</p>', "the page saw five ticks")
  T.match(dom, "<li>message hello</li>")
  for i = 1, 5 do
    T.match(dom, "<li>tick " .. i .. " id=" .. i .. "</li>")
  end
  T.eq(seen_last_ids[1], "-")
  T.eq(seen_last_ids[2], "3", "the reconnection carried Last-Event-ID")
end)

T.test("the raw stream: headers, retry, multi-line data, comments, heartbeats", function()
  local out = P.check(mgr, P.HTTP .. [[
import http.client
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
c.request("GET", "/raw")
r = c.getresponse()
print(r.status, r.getheader("Content-Type"), r.getheader("Cache-Control"))
print(repr(r.read().decode()))
]], port)
  T.match(out, "^200 text/event%-stream; charset=utf%-8 no%-cache\n")
  local stream, pings = out:match("\n'(.*)'\n$"):gsub(": ping\\n\\n", "")
  T.ok(pings >= 2, "heartbeats: " .. pings)
  T.eq(stream, "retry: 1000\\n\\nevent: multi\\nid: a1\\ndata: line1\\ndata: line2\\ndata: line3\\n\\n"
       .. ": just a comment\\n\\ndata: after heartbeats\\n\\n", "the stream")
end)

T.test("backpressure: a client that does not read makes send() refuse", function()
  local out = P.check(mgr, P.HTTP .. [[
import socket, time
s = socket.create_connection(("127.0.0.1", PORT))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(1.5)
s.close()
print("done")
]], port, 20000)
  T.match(out, "done")
  T.ok(T.poll_until(mgr, function() return full.err ~= nil end, 5000), "send refused")
  T.eq(full.err, "send queue full")
  T.ok(full.queued >= 256 * 1024, "queued " .. tostring(full.queued))
  -- What went out fits in the kernel's buffers (the sender's grows up to
  -- tcp_wmem's maximum, 4 MiB by default) plus the queue.
  local wmem = tonumber((T.read_file("/proc/sys/net/ipv4/tcp_wmem") or ""):match("(%d+)%s*$"))
  local bound = ((wmem or 4194304) + 2 * 256 * 1024) / (16 * 1024)
  T.ok(full.sent < bound, "sent " .. tostring(full.sent) .. " events of 16 KiB before refusing (bound "
       .. bound .. ")")
end)

T.run()
