-- The Autobahn permessage-deflate cases (groups 12 and 13 of the port in
-- tests/autobahn, RFC 7692) against a ws_listen echo server: fuzzingclient.py
-- offers the extension as Autobahn does (13.x: server_no_context_takeover,
-- server_max_window_bits=9/15, several offers at once), compresses with
-- zlib's raw deflate and checks that the server's messages honour what was
-- agreed (its window size, no context takeover) byte for byte.
--
-- Until the server negotiates permessage-deflate (a 101 without
-- Sec-WebSocket-Extensions: the cases are UNIMPLEMENTED), the file is
-- skipped (exit 77), never passed. Each case sends 50 messages instead of
-- Autobahn's 1000 to fit CI's time (AUTOBAHN_COUNT=1000: the full run).
local T = require("testlib")
local A = require("testautobahn")
local W = require("testws")

local COUNT = tonumber(os.getenv("AUTOBAHN_COUNT") or "") or 50

local mgr, logs = A.manager()
local _, url = A.echo_server(mgr)

local probe = A.fuzzingclient(mgr, url, "--cases 12.1.1 --count 1", 30000)
if probe.by_id["12.1.1"] and probe.by_id["12.1.1"].status == "UNIMPLEMENTED" then
  T.skip("permessage-deflate not negotiated yet (" .. probe.by_id["12.1.1"].detail .. ")")
end

T.test("group 12 (compressed messages of five kinds of payload, 16 B to 128 KiB, auto-fragmented)", function()
  local r = A.fuzzingclient(mgr, url, "--cases 12 --count " .. COUNT, 170000)
  A.check(r, "server", "12")
  T.eq(#logs, 0, "no errors logged by the echo server (" .. (logs[1] and logs[1].msg or "") .. ")")
end)

T.test("group 13 (the offers' parameters: no_context_takeover, max_window_bits 9 and 15, several offers)", function()
  local r = A.fuzzingclient(mgr, url, "--cases 13 --count " .. COUNT, 170000)
  A.check(r, "server", "13")
  T.eq(#logs, 0, "no errors logged by the echo server (" .. (logs[1] and logs[1].msg or "") .. ")")
end)

T.test("deflate = false: the offer is declined, the cases are UNIMPLEMENTED, groups 1-7 still pass", function()
  local _, plain_url = A.echo_server(mgr, { deflate = false })
  local r = A.fuzzingclient(mgr, plain_url, "--cases 12.1.1,13.7.1,1,2,3,4,5,6,7 --count 1", 120000)
  T.eq(r.by_id["12.1.1"].status, "UNIMPLEMENTED", "12.1.1 with deflate = false")
  T.eq(r.by_id["13.7.1"].status, "UNIMPLEMENTED", "13.7.1 with deflate = false")
  A.check(r, "server", "1,2,3,4,5,6,7")
end)

T.test("a python websockets client (offering permessage-deflate) gets compressed echoes", function()
  local r = W.python_client_kv(mgr, url, "'deflate'")
  W.check_compressed(r, "the server (its echoes)")
  print("python client: " .. r.header .. ", " .. r.rsv1 .. " compressed frames from the server")
end)

T.run()
