-- The Autobahn fuzzingclient cases (groups 1-7, 9, 10; the port in
-- tests/autobahn) against a ws_listen echo server of this process: every
-- case must pass (OK, NON-STRICT or INFORMATIONAL as Autobahn defines
-- them) or be listed, with its RFC reason, in cases.py's EXPECTED.server;
-- a listed case that passes fails the test too, so the list stays true.
--
-- The server allows Autobahn's largest message (16 MiB, 9.1.6 and 9.2.6).
-- Group 9 runs whole, at Autobahn's sizes and counts (1000 round trips per
-- 9.7/9.8 case; AUTOBAHN_COUNT changes that). Groups 12 and 13
-- (permessage-deflate) are in test_autobahn_deflate_server.lua.
local T = require("testlib")
local A = require("testautobahn")

local COUNT = tonumber(os.getenv("AUTOBAHN_COUNT") or "") or 1000

local mgr, logs = A.manager()
local _, url = A.echo_server(mgr)

local function run(patterns, timeout_ms)
  local r = A.fuzzingclient(mgr, url, "--cases " .. patterns .. " --count " .. COUNT, timeout_ms)
  local groups = A.check(r, "server", patterns)
  T.eq(#logs, 0, "no errors logged by the echo server (" .. (logs[1] and logs[1].msg or "") .. ")")
  return r, groups
end

T.test("groups 1-7 and 10 (framing, pings, reserved bits and opcodes, fragments, UTF-8, close)", function()
  local r = run("1,2,3,4,5,6,7,10", 120000)
  -- The receiver fails the connection at the first invalid UTF-8 byte
  -- (6.4.x OK, where NON-STRICT would mean at the message's end).
  for _, id in ipairs({ "6.4.1", "6.4.2", "6.4.3", "6.4.4" }) do
    T.eq(r.by_id[id] and r.by_id[id].status, "OK", id .. " (fail-fast on invalid UTF-8)")
  end
end)

T.test("group 9 (messages up to 16 MiB, fragments, chops, round trips)", function()
  run("9", 150000)
end)

T.run()
