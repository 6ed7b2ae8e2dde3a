-- The demo server (examples/demo_server.lua) proven with a real browser:
-- headless Chromium loads /?autosend=..., the page opens its WebSocket to
-- /ws and sends the message by itself, and the dumped DOM must show the
-- server's echo in #messages. A Python websockets peer in the same chat
-- must get the broadcast, and a screenshot of the page must be a real PNG.
--
-- Needs Debian's chromium and python3-websockets (scripts/setup-deps.sh
-- --with-test-tools installs both); without either the test is skipped
-- (exit 77). The screenshot is copied to the build folder
-- (test_browser_screenshot.png) for a person to look at.
local T = require("testlib")
local P = require("testpy")
local E = require("testexamples")

local chromium
for _, name in ipairs({ "chromium", "chromium-browser" }) do
  if not chromium and T.have_command(name) then
    chromium = name
  end
end
if not chromium then
  T.skip("chromium is not installed (apt-get install chromium)")
end
T.need_python_module("websockets", "python3-websockets")

-- Runs headless Chromium with a fresh profile and the given extra flags;
-- bounded by timeout(1). Returns stdout, exit code, stderr.
local profile_seq = 0
local function run_chromium(args)
  profile_seq = profile_seq + 1
  local profile = string.format("%s/chromium-profile-%d", T.tmpdir(), profile_seq)
  os.execute("mkdir -p " .. T.q(profile))
  local cmd = table.concat({
    "timeout -k 5 60", chromium, "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--no-first-run", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--user-data-dir=" .. T.q(profile), args,
  }, " ")
  return T.run_client(nil, cmd, 90000)
end

local function png_size(data)
  -- The IHDR chunk follows the 8-byte signature: width and height at 17..24.
  local function u32(i)
    local a, b, c, d = data:byte(i, i + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end
  return u32(17), u32(21)
end

T.test("headless Chromium chats with the demo server over a WebSocket", function()
  local port = T.free_port()
  local base = "http://127.0.0.1:" .. port
  local job, pidfile = E.start("demo_server.lua", "PORT=" .. port)
  local ok, err = pcall(function()
    E.wait_until_serving(base .. "/")

    -- A Python peer in the chat: it must receive the browser's message.
    local peer = P.spawn(P.WEBSOCKETS .. [[
async def main():
    async with connect(close_timeout=2) as ws:
        out("peer connected")
        while True:
            m = await ws.recv()
            out("peer got:", m)
            if "hello-from-chromium" in m:
                break

asyncio.run(asyncio.wait_for(main(), 60))
]], T.q("ws://127.0.0.1:" .. port .. "/ws"))
    T.match(E.wait_for_line(peer, "peer connected"), "peer connected", "python peer")

    local url = base .. "/?autosend=hello-from-chromium"
    local dom, rc, stderr = run_chromium("--virtual-time-budget=5000 --dump-dom " .. T.q(url))
    T.eq(rc, 0, "chromium --dump-dom exit status (stderr: " .. stderr:sub(-500) .. ")")
    T.match(dom, "<h1>mongoose%-ffi</h1>", "the demo page was loaded")
    local list = dom:match('<ul id="messages">(.-)</ul>')
    T.ok(list, "#messages in the dumped DOM")
    T.match(list, "<li[^>]*>you: hello%-from%-chromium</li>", "the echo shown in #messages")
    T.match(list, "connected", "the page's WebSocket opened")
    -- The status box was filled from /api/status by the page's fetch().
    T.match(dom, '<div id="status">[^<]*"server": "mongoose%-ffi"', "status JSON rendered")

    local peer_out, peer_rc = T.wait(peer, nil, 30000)
    T.eq(peer_rc, 0, "python peer exit status")
    T.match(peer_out, "peer got: peer: hello%-from%-chromium", "the broadcast reached the peer")

    local shot = T.tmpdir() .. "/shot.png"
    local _, src, serr = run_chromium("--virtual-time-budget=5000 --window-size=1000,700 --hide-scrollbars "
                                      .. "--screenshot=" .. T.q(shot) .. " " .. T.q(url))
    T.eq(src, 0, "chromium --screenshot exit status (stderr: " .. serr:sub(-500) .. ")")
    local png = T.read_file(shot)
    T.ok(png, "screenshot written to " .. shot)
    T.eq(png:sub(1, 8), "\137PNG\r\n\26\n", "PNG signature")
    T.ok(#png > 10000, "screenshot is non-trivial (" .. #png .. " bytes)")
    local w, h = png_size(png)
    T.eq(w, 1000, "screenshot width")
    T.eq(h, 700, "screenshot height")
    local kept = T.build_dir .. "/test_browser_screenshot.png"
    T.write_file(kept, png)
    print("screenshot: " .. kept .. " (" .. #png .. " bytes)")
  end)
  local out, exit_code = E.stop_and_wait(job, pidfile)
  if not ok then
    error(err, 0)
  end
  T.eq(exit_code, 0, "demo server exit status after SIGTERM")
  T.match(out, "demo: stopped")
end)

T.run()
