-- The Autobahn fuzzingserver cases (groups 1-7, 9, 10; the port in
-- tests/autobahn) against the library's ws_connect client: fuzzingserver.py
-- plays the server side of each case, and this process connects to it
-- for every case as Autobahn's testee clients do (/getCaseCount, then
-- /runCase?case=N, echoing every message and closing when asked, then
-- /updateReports). Every case must pass (OK, NON-STRICT or INFORMATIONAL
-- as Autobahn defines them) or be listed, with its RFC reason, in
-- cases.py's EXPECTED.client; a listed case that passes fails the test.
--
-- The client allows Autobahn's largest message (16 MiB); group 9 runs at
-- Autobahn's sizes and counts (AUTOBAHN_COUNT changes the 1000 round trips
-- of 9.7/9.8). Groups 12 and 13 are in test_autobahn_deflate_client.lua.
local T = require("testlib")
local A = require("testautobahn")

local COUNT = tonumber(os.getenv("AUTOBAHN_COUNT") or "") or 1000

local mgr, logs = A.manager()

local function run(patterns, timeout_ms)
  local r = A.fuzzingserver(mgr, "--cases " .. patterns .. " --count " .. COUNT, timeout_ms)
  A.check(r, "client", patterns)
  T.eq(#logs, 0, "no errors logged by the client (" .. (logs[1] and logs[1].msg or "") .. ")")
  return r
end

T.test("groups 1-7 and 10 (framing, pings, reserved bits and opcodes, fragments, UTF-8, close)", function()
  local r = run("1,2,3,4,5,6,7,10", 120000)
  for _, id in ipairs({ "6.4.1", "6.4.2", "6.4.3", "6.4.4" }) do
    T.eq(r.by_id[id] and r.by_id[id].status, "OK", id .. " (fail-fast on invalid UTF-8)")
  end
end)

T.test("group 9 (messages up to 16 MiB, fragments, chops, round trips)", function()
  run("9", 150000)
end)

T.run()
