-- Python's websockets (python3-websockets) against the library, both ways,
-- plain and with compression offered: websockets offers permessage-deflate
-- by default (RFC 7692) as a client, and accepts it as a server. Text and
-- binary messages up to 1 MiB must come back unchanged, and the extension
-- must be handled consistently: either declined properly (no
-- Sec-WebSocket-Extensions in the 101, websockets agrees on no extension,
-- no frame with RSV1) or agreed, with websockets seeing RSV1 (compressed)
-- frames. Which of the two happened is printed. The assertions that
-- require compression are in test_autobahn_deflate_server.lua and
-- test_autobahn_deflate_client.lua, skipped until it is negotiated.
local T = require("testlib")
local W = require("testws")

T.need_python_module("websockets", "python3-websockets")

local mgr = assert(require("mongoose").new_manager())

-- An echo server on mgr; returns the listener and its URL.
local function echo_server()
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", { path = "/ws", max_message = 4 * 1024 * 1024,
                                                          on_message = W.echo }))
  return l, "ws://127.0.0.1:" .. l:port() .. "/ws"
end

-- Checks what a run printed: echoes, and a consistent extension.
local function check_extension(r, header, who)
  T.eq(r.echoes, "4", who .. ": every message echoed unchanged")
  if header == "-" then
    T.eq(r.extensions, "-", who .. ": no Sec-WebSocket-Extensions in the 101, so no extension agreed")
    T.eq(r.rsv1, "0", who .. ": no compressed frame without the extension")
    print(who .. ": no extension agreed (the 101 has no Sec-WebSocket-Extensions)")
  else
    T.match(header, "^permessage%-deflate", who .. ": the extension agreed")
    T.eq(r.extensions, "permessage-deflate", who .. ": websockets agreed on permessage-deflate")
    print(who .. ": permessage-deflate agreed: " .. header .. " (" .. r.rsv1 .. " compressed frames)")
  end
end

-- A test of a python_client(compression) (who) against a fresh echo
-- server: first(r) checks what only that case shows, then check_extension.
local function client_test(name, compression, who, first)
  T.test(name, function()
    local l, url = echo_server()
    local r = W.python_client_kv(mgr, url, compression)
    first(r)
    check_extension(r, r.header, who)
    l:close()
  end)
end

client_test("a websockets client with compression=None talks to a ws_listen server", "None", "plain client",
            function(r)
  T.eq(r.header, "-", "nothing offered, nothing in the 101")
end)

client_test("a websockets client offering permessage-deflate (its default) talks to a ws_listen server", "'deflate'",
            "deflate-offering client", function(r)
  T.match(r.offer, "^permessage%-deflate", "websockets offered the extension")
end)

T.test("ws_connect talks to a websockets server with compression=None", function()
  local r, response = W.python_server_kv(mgr, "None")
  T.eq(r.header, "-", "no extension in the 101")
  T.eq(response.headers["sec-websocket-extensions"], nil, "the client saw no extension")
  check_extension(r, "-", "plain server")
  T.eq(r.close, "1000", "the server got the client's close code")
end)

T.test("ws_connect talks to a websockets server that accepts permessage-deflate (its default)", function()
  local r, response = W.python_server_kv(mgr, "'deflate'")
  T.eq(response.headers["sec-websocket-extensions"] or "-", r.header, "the 101 the client got is the server's")
  if r.offer == "-" then
    T.eq(r.header, "-", "nothing offered, nothing agreed")
    print("client: offers no permessage-deflate")
  else
    T.match(r.offer, "^permessage%-deflate", "the client's offer")
  end
  check_extension(r, r.header, "deflate-accepting server")
  T.eq(r.close, "1000", "the server got the client's close code")
end)

T.run()
