-- The demo server (examples/demo_server.lua) proven with a real browser:
-- headless Chromium loads /?autosend=..., the page opens its WebSocket to
-- /ws and sends the message by itself, and the dumped DOM must show the
-- server's echo in #messages. A Python websockets peer in the same chat
-- must get the broadcast, and a screenshot of the page must be a real PNG.
--
-- Needs Debian's chromium: installed with apt-get when missing (as root);
-- when it cannot be installed the test prints "skipped" and exits 0.
local T = require("testlib")

local root = T.source_dir
local luajit = os.getenv("LUAJIT") or "luajit"

local function sh_ok(cmd)
  local _, rc = T.run_client(nil, cmd, 900000)
  return rc == 0
end

local function find_chromium()
  for _, name in ipairs({ "chromium", "chromium-browser" }) do
    if sh_ok("command -v " .. name .. " >/dev/null") then
      return name
    end
  end
end

local chromium = find_chromium()
if not chromium then
  io.stdout:write("chromium is missing; trying apt-get install -y chromium\n")
  io.stdout:flush()
  sh_ok("[ \"$(id -u)\" = 0 ] && command -v apt-get >/dev/null && "
        .. "timeout 600 apt-get install -y chromium >/dev/null 2>&1")
  chromium = find_chromium()
end
if not chromium then
  print("skipped: chromium is not installed and could not be installed (apt-get install chromium)")
  os.exit(0)
end

local function free_port()
  local out = T.run_client(nil, T.python .. [[ -c "import socket; s=socket.socket(); ]]
                           .. [[s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]])
  return assert(tonumber(out), "no free port")
end

-- Starts the demo server; returns its job and pid file.
local function start_demo(port)
  local pidfile = T.tmpdir() .. "/demo_browser.pid"
  local job = T.spawn(string.format("PORT=%d exec %s %s/examples/demo_server.lua & echo $! > %s; wait $!",
                                    port, luajit, T.q(root), T.q(pidfile)))
  return job, pidfile
end

local function wait_until_serving(url)
  for _ = 1, 100 do
    local _, rc = T.run_client(nil, "curl -s -o /dev/null --max-time 1 " .. T.q(url))
    if rc == 0 then
      return
    end
    os.execute("sleep 0.05")
  end
  error("server did not start: " .. url)
end

local function stop_demo(job, pidfile)
  local pid = (T.read_file(pidfile) or ""):match("%d+")
  if pid then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  end
  return T.wait(job, nil, 10000)
end

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
  local port = free_port()
  local base = "http://127.0.0.1:" .. port
  local job, pidfile = start_demo(port)
  local ok, err = pcall(function()
    wait_until_serving(base .. "/")

    -- A Python peer in the chat: it must receive the browser's message.
    local peer_script = T.tmpdir() .. "/peer.py"
    T.write_file(peer_script, [[
import asyncio, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], open_timeout=5, close_timeout=2) as ws:
        print("peer connected", flush=True)
        while True:
            m = await ws.recv()
            print("peer got:", m, flush=True)
            if "hello-from-chromium" in m:
                break

asyncio.run(asyncio.wait_for(main(), 60))
]])
    local peer = T.spawn(string.format("%s %s %s", T.python, T.q(peer_script),
                                       T.q("ws://127.0.0.1:" .. port .. "/ws")))
    for _ = 1, 200 do
      if (T.read_file(peer.base .. ".out") or ""):find("peer connected") then
        break
      end
      os.execute("sleep 0.025")
    end
    T.match(T.read_file(peer.base .. ".out") or "", "peer connected", "python peer")

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
    print("screenshot: " .. shot .. " (" .. #png .. " bytes)")
  end)
  local out, exit_code = stop_demo(job, pidfile)
  if not ok then
    error(err, 0)
  end
  T.eq(exit_code, 0, "demo server exit status after SIGTERM")
  T.match(out, "demo: stopped")
end)

T.run()
