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

local mgr, logs = A.manager()
local _, url = A.echo_server(mgr)

A.suite("server", "the echo server", logs, function(args, timeout_ms)
  return A.fuzzingclient(mgr, url, args, timeout_ms)
end)

T.run()
