-- The Autobahn permessage-deflate cases (groups 12 and 13 of the port in
-- tests/autobahn, RFC 7692) against the library's ws_connect client:
-- fuzzingserver.py accepts the client's offer as Autobahn's server does
-- (13.x: asking for client_no_context_takeover and client_max_window_bits
-- 9 or 15 where the offer allows it), and checks that the client's
-- messages honour what was agreed.
--
-- The client offers permessage-deflate when asked (deflate = true; it
-- does not by default). Until it does (the cases are UNIMPLEMENTED), the
-- file is skipped (exit 77), never passed. Each case sends 50 messages
-- instead of Autobahn's 1000 (AUTOBAHN_COUNT=1000: the full run).
local T = require("testlib")
local A = require("testautobahn")
local W = require("testws")

local COUNT = tonumber(os.getenv("AUTOBAHN_COUNT") or "") or 50

local mgr, logs = A.manager()
local DEFLATE = { deflate = true }

local probe = A.fuzzingserver(mgr, "--cases 12.1.1 --count 1", 30000, DEFLATE)
if probe.by_id["12.1.1"] and probe.by_id["12.1.1"].status == "UNIMPLEMENTED" then
  T.skip("permessage-deflate not negotiated yet (" .. probe.by_id["12.1.1"].detail .. ")")
end

T.test("group 12 (compressed messages of five kinds of payload, 16 B to 128 KiB, auto-fragmented)", function()
  local r = A.fuzzingserver(mgr, "--cases 12 --count " .. COUNT, 170000, DEFLATE)
  A.check(r, "client", "12")
  T.eq(#logs, 0, "no errors logged by the client (" .. (logs[1] and logs[1].msg or "") .. ")")
end)

T.test("group 13 (the server's answers: client_no_context_takeover, client_max_window_bits 9 and 15)", function()
  local r = A.fuzzingserver(mgr, "--cases 13 --count " .. COUNT, 170000, DEFLATE)
  A.check(r, "client", "13")
  T.eq(#logs, 0, "no errors logged by the client (" .. (logs[1] and logs[1].msg or "") .. ")")
end)

T.test("ws_connect offers permessage-deflate to a python websockets server and compresses", function()
  local r, response = W.python_server_kv(mgr, "'deflate'", DEFLATE)
  T.match(r.offer, "^permessage%-deflate", "the client's offer")
  W.check_compressed(r, "the client (its messages)")
  T.eq(response.headers["sec-websocket-extensions"], r.header, "the client got that 101")
  print("python server: offer " .. r.offer .. ", " .. r.rsv1 .. " compressed frames from the client")
end)

T.run()
