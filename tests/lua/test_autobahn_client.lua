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

local mgr, logs = A.manager()

A.suite("client", "the client", logs, function(args, timeout_ms)
  return A.fuzzingserver(mgr, args, timeout_ms)
end)

T.run()
