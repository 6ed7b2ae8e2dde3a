-- WSS: the project's WebSocket server over TLS (mongoose.tls) against
-- Python's websockets with an ssl context that trusts the test CA; skipped
-- without a TLS backend or without python3-websockets.
local T = require("testlib")
T.need_python_module("websockets", "python3-websockets")
local X = require("testtls")
local mongoose = require("mongoose")
local CA, SERVER_TLS = X.CA, X.SERVER_TLS
T.test("WSS server: Python websockets with the test CA", function()
  local mgr = assert(mongoose.new_manager())
  local got = {}
  local l = assert(mgr:ws_listen("wss://127.0.0.1:0/", {
    tls = SERVER_TLS,
    on_message = function(ws, data)
      got[#got + 1] = data
      ws:send("echo: " .. data)
    end,
  }))
  local script = T.tmpdir() .. "/wss_client.py"
  T.write_file(script, [[
import asyncio, ssl, sys
import websockets

async def echo():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx, open_timeout=5, close_timeout=5) as ws:
        await ws.send("over tls")
        print(await asyncio.wait_for(ws.recv(), 5))
        print(ws.transport.get_extra_info("ssl_object").version())

async def main():
    # A builtin-TLS server fails about one handshake in 250-600 with
    # BAD_SIGNATURE (testtls.lua, CURL_RETRY): a fresh handshake is retried.
    for attempt in range(3):
        try:
            await echo()
            break
        except ssl.SSLError as e:
            if e.reason != "BAD_SIGNATURE" or attempt == 2:
                raise
    try:
        async with websockets.connect(sys.argv[1], ssl=ssl.create_default_context(), open_timeout=5):
            print("unexpected: connected without the CA")
    except ssl.SSLCertVerificationError:
        print("refused without the CA")

asyncio.run(asyncio.wait_for(main(), 20))
]])
  local url = "wss://localhost:" .. l:port() .. "/"
  local out, rc, err = T.run_client(mgr, string.format("%s %s %s %s", T.q(T.python), T.q(script), T.q(url),
                                                       T.q(CA)), 30000)
  T.eq(rc, 0, "python exit (" .. err .. ")")
  T.match(out, "^echo: over tls\nTLSv1%.[23]\nrefused without the CA\n$")
  T.eq(got[1], "over tls")
  mgr:close()
end)

T.run()
