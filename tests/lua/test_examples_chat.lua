-- The demo server's WebSocket chat (examples/demo_server.lua) with
-- Python's websockets as the chat clients; skipped when python3 cannot
-- import websockets.
local T = require("testlib")
T.need_python_module("websockets", "python3-websockets")
local P = require("testpy")
local E = require("testexamples")
T.test("demo server: WebSocket chat echoes to the sender, broadcasts to the others", function()
  local job, pidfile, port, base = E.serve("demo_server.lua")

  -- The page carries the chat UI.
  local page = T.run_client(nil, "curl -s --max-time 5 " .. base .. "/")
  T.match(page, 'id="messages"', "message list")
  T.match(page, 'id="input"', "input")
  T.match(page, 'id="send"', "send button")
  T.match(page, "new WebSocket%(", "the page opens a WebSocket")
  T.match(page, "'/ws'", "to /ws")
  T.match(page, "autosend", "autosend support")

  local out, rc, err = P.run(nil, P.WEBSOCKETS .. [[
import json, urllib.request

async def main():
    async with connect() as a, connect() as b:
        status = json.load(urllib.request.urlopen(sys.argv[2], timeout=5))
        out("chat_clients", status["chat_clients"])
        await a.send("hello from a")
        out("a got:", await recv(a))
        out("b got:", await recv(b))
        await b.send("and b answers")
        out("b got:", await recv(b))
        out("a got:", await recv(a))
        await nothing_more(a, "a unexpected:", "a: nothing more")
        # Binary is refused with close code 1003.
        await b.send(b"\x00\x01")
        try:
            await recv(b)
        except websockets.ConnectionClosed:
            pass
        out("b closed:", b.close_code, b.close_reason)
]] .. P.MAIN, T.q("ws://127.0.0.1:" .. port .. "/ws") .. " " .. T.q(base .. "/api/status"), 30000)
  T.eq(rc, 0, "python client exit (" .. err .. ")")
  T.eq(out, table.concat({
    "chat_clients 2",
    "a got: you: hello from a",
    "b got: peer: hello from a",
    "b got: you: and b answers",
    "a got: peer: and b answers",
    "a: nothing more",
    "b closed: 1003 text only",
    "",
  }, "\n"), "chat transcript")

  E.stopped_ok(job, pidfile, "TERM", "demo: stopped")
end)

T.test("demo server stops on SIGTERM with a chat client connected", function()
  local job, pidfile, port = E.serve("demo_server.lua")
  local client = P.spawn(P.WEBSOCKETS .. [[
async def main():
    async with connect(close_timeout=2) as ws:
        await ws.send("hi")
        out(await recv(ws))
        try:
            await recv(ws, 15)
        except websockets.ConnectionClosed:
            out("closed by the server")
]] .. P.MAIN, T.q("ws://127.0.0.1:" .. port .. "/ws"))
  -- Wait until the client got its echo, then stop the server.
  T.match(E.wait_for_line(client, "you: hi"), "you: hi", "client connected")
  E.stopped_ok(job, pidfile, "TERM", "demo: stopped")
  local cout, crc = T.wait(client, nil, 20000)
  T.eq(crc, 0, "client exit")
  T.match(cout, "closed by the server")
end)

T.run()
