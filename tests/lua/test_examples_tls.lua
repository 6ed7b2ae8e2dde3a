-- The demo server over TLS (TLS_CERT and TLS_KEY): https for curl
-- --cacert and a wss chat for Python's websockets. Skipped in a build
-- without TLS or when python3 cannot import websockets.
local T = require("testlib")
T.need_python_module("websockets", "python3-websockets")
local X = require("testtls")
local E = require("testexamples")

T.test("demo server with TLS_CERT and TLS_KEY: https (curl --cacert) and wss chat", function()
  -- The throwaway CA and server certificate of testtls.lua.
  local port = T.free_port()
  local env = string.format("PORT=%d TLS_CERT=%s TLS_KEY=%s", port, T.q(X.SRV_CERT),
                            T.q(X.SRV_KEY))
  local job, pidfile = E.start("demo_server.lua", env)
  local cacert = "--cacert " .. T.q(X.CA) .. " "
  local base = "https://localhost:" .. port
  E.wait_until_serving(base .. "/", cacert)
  local page, rc, cerr = T.run_client(nil, "curl -sS -i --max-time 5 " .. cacert .. base .. "/")
  T.eq(rc, 0, "curl --cacert exit (" .. cerr .. ")")
  T.match(page, "^HTTP/1.1 200")
  T.match(page, "<h1>mongoose%-ffi</h1>")
  local _, plain_rc = T.run_client(nil, "curl -s -o /dev/null --max-time 2 http://127.0.0.1:"
                                   .. port .. "/")
  T.ok(plain_rc ~= 0, "no plain http on the TLS port")
  local chat = T.run_client(nil, T.python .. " -c " .. T.q([[
import asyncio, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx, open_timeout=5, close_timeout=5) as ws:
        await ws.send("over wss")
        print(await asyncio.wait_for(ws.recv(), 5))
asyncio.run(asyncio.wait_for(main(), 20))
]]) .. " " .. T.q("wss://localhost:" .. port .. "/ws") .. " " .. T.q(X.CA), 30000)
  T.eq(chat, "you: over wss\n", "wss chat")
  E.stopped_ok(job, pidfile, "TERM", "demo: serving on https://127%.0%.0%.1:" .. port, "demo: stopped")
end)

T.run()
