-- What the WebSocket tests share: a server on a fresh manager, an echo
-- handler, a byte pattern, and Python websockets clients (testpy's
-- WEBSOCKETS prelude) run in the background while the manager polls.
local T = require("testlib")
local P = require("testpy")
local mongoose = require("mongoose")

local _M = {}

-- Runs Python code (defining async main()) against url while mgr polls.
-- Returns stdout; fails when the script exits non-zero.
function _M.py(mgr, url, code)
  return P.check(mgr, P.WEBSOCKETS .. code .. P.MAIN, T.q(url))
end

-- A manager with a WebSocket server on 127.0.0.1:0; returns mgr,
-- listener and the ws:// URL of opts.path (default "/ws").
function _M.server(opts)
  local mgr = assert(mongoose.new_manager())
  opts.path = opts.path or "/ws"
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", opts))
  return mgr, l, "ws://127.0.0.1:" .. l:port() .. opts.path
end

function _M.echo(ws, data, is_binary)
  ws:send(data, is_binary and "binary" or "text")
end

-- Handlers that only record what they see into list t (the checks run
-- afterwards, outside the handlers): on_control ("kind:data"), on_close
-- ({ code, reason }), on_error (the message).
function _M.controls_into(t)
  return function(_, kind, data)
    t[#t + 1] = kind .. ":" .. data
  end
end

function _M.closes_into(t)
  return function(_, code, reason)
    t[#t + 1] = { code = code, reason = reason }
  end
end

function _M.errors_into(t)
  return function(_, e)
    t[#t + 1] = e
  end
end

-- Checks (what) that list t gets an entry within 3 s while mgr polls.
function _M.wait_entry(mgr, t, what)
  T.ok(T.poll_until(mgr, function() return #t > 0 end, 3000), what)
end

-- 256 bytes 0..255 repeated: n must be a multiple of 256.
function _M.byte_pattern(n)
  local t = {}
  for i = 0, 255 do
    t[#t + 1] = string.char(i)
  end
  return table.concat(t):rep(n / 256)
end

-- Python code for websockets peers: counts the frames that websockets'
-- permessage-deflate extension decodes (only there when agreed) and those
-- with RSV1 (compressed) in STATS; MESSAGES are four text and binary
-- messages up to 1 MiB; ext_names(ws) the agreed extensions ("-": none).
_M.PY_DEFLATE_STATS = [[
import websockets.extensions.permessage_deflate as pmd
STATS = {"decoded": 0, "rsv1": 0}
_decode = pmd.PerMessageDeflate.decode
def _counting_decode(self, frame, *, max_size=None):
    STATS["decoded"] += 1
    if frame.rsv1:
        STATS["rsv1"] += 1
    return _decode(self, frame, max_size=max_size)
pmd.PerMessageDeflate.decode = _counting_decode
MESSAGES = ["hello", b"\x00\x01\x02\xff" * 64, "abc" * 50000, bytes(range(256)) * 4096]
def ext_names(ws):
    return ",".join(e.name for e in ws.extensions) or "-"
]]

-- A websockets echo server for one connection, in the background, with
-- compression "None" or "'deflate'" (websockets' default). It prints
-- "offer" (the request's Sec-WebSocket-Extensions), "header" (its 101's),
-- "extensions", "echoes", "rsv1" (compressed frames received) and "close"
-- (the client's close code). Returns the job and the ws:// URL.
function _M.python_server(mgr, compression)
  local code = P.WEBSOCKETS:gsub("URL = sys.argv%[1%]\n", "") .. _M.PY_DEFLATE_STATS .. [[
async def main():
    done = asyncio.get_running_loop().create_future()
    async def handler(ws, path):
        out("offer", ws.request_headers.get("Sec-WebSocket-Extensions", "-"))
        out("header", ws.response_headers.get("Sec-WebSocket-Extensions", "-"))
        out("extensions", ext_names(ws))
        n = 0
        try:
            async for m in ws:
                await ws.send(m)
                n += 1
        except websockets.ConnectionClosed:
            pass
        out("echoes", n)
        out("rsv1", STATS["rsv1"])
        out("close", ws.close_code)
        done.set_result(True)
    async with websockets.serve(handler, "127.0.0.1", 0, compression=]] .. compression .. [[,
                                max_size=None, ping_interval=None) as server:
        out("port", server.sockets[0].getsockname()[1])
        await done
]] .. P.MAIN
  local job = T.spawn("timeout 60 " .. T.q(T.python) .. " " .. T.q(P.file(code)))
  local port = T.poll_for_output(mgr, job, "port (%d+)", 10000)
  if not port then
    error("the python server did not start: " .. (T.read_file(job.base .. ".err") or ""), 2)
  end
  return job, "ws://127.0.0.1:" .. port .. "/echo"
end

-- ws_connect to url on mgr (opts: extra ws_connect options): sends four
-- text and binary messages up to 1 MiB, checks the echoes, closes with
-- 1000. Returns the 101 response.
function _M.client_roundtrip(mgr, url, opts)
  local msgs = { "hello", ("\0\1\2\255"):rep(64), ("abc"):rep(50000), _M.byte_pattern(1024 * 1024) }
  local kinds = { "text", "binary", "text", "binary" }
  local got, closed, response = {}, nil, nil
  local o = {
    max_message = 4 * 1024 * 1024,
    on_open = function(_, resp) response = resp end,
    on_message = function(w, data, is_binary)
      got[#got + 1] = { data = data, binary = is_binary }
      if #got == #msgs then
        w:close(1000)
      end
    end,
    on_close = function(_, code) closed = code end,
  }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  local ws = assert(mgr:ws_connect(url, o))
  for i, m in ipairs(msgs) do
    ws:send(m, kinds[i])
  end
  T.ok(T.poll_until(mgr, function() return closed ~= nil end, 20000), "the client closed")
  T.eq(#got, #msgs, "echoes received")
  for i, m in ipairs(msgs) do
    T.ok(got[i].data == m, "echo " .. i .. " unchanged (" .. #got[i].data .. " bytes)")
    T.eq(got[i].binary, kinds[i] == "binary", "echo " .. i .. " kind")
  end
  T.eq(closed, 1000, "closed normally")
  return response
end

-- Python (for W.py) of a websockets client that sends MESSAGES and checks
-- the echoes; compression: "None" or "'deflate'". Prints "offer",
-- "header" (the 101's Sec-WebSocket-Extensions), "echoes", "extensions",
-- "rsv1" (compressed frames received).
function _M.python_client(compression)
  return _M.PY_DEFLATE_STATS .. [[
async def main():
    async with connect(compression=]] .. compression .. [[, max_size=None) as ws:
        out("offer", ws.request_headers.get("Sec-WebSocket-Extensions", "-"))
        out("header", ws.response_headers.get("Sec-WebSocket-Extensions", "-"))
        for m in MESSAGES:
            await ws.send(m)
            assert await recv(ws) == m, "echo differs"
        out("echoes", len(MESSAGES))
        out("extensions", ext_names(ws))
        out("rsv1", STATS["rsv1"])
]]
end

-- Checks a python peer's lines r (python_client_kv, python_server_kv)
-- for permessage-deflate agreed and used: in the 101, agreed by
-- websockets, four echoes, and at least two frames that compressor
-- compressed (RSV1).
function _M.check_compressed(r, compressor)
  T.match(r.header, "^permessage%-deflate", "the 101 agrees on permessage-deflate")
  T.eq(r.extensions, "permessage-deflate", "websockets agreed on it")
  T.eq(r.echoes, "4", "every message echoed unchanged")
  T.ok(tonumber(r.rsv1) >= 2, compressor .. " compressed (" .. r.rsv1 .. " frames with RSV1)")
end

-- python_client(compression) against url: returns its lines parsed (P.kv).
function _M.python_client_kv(mgr, url, compression)
  return P.kv(_M.py(mgr, url, _M.python_client(compression)))
end

-- client_roundtrip (opts) against a python_server(compression), which must
-- exit 0: returns the server's lines parsed (P.kv) and the 101 response.
function _M.python_server_kv(mgr, compression, opts)
  local job, url = _M.python_server(mgr, compression)
  local response = _M.client_roundtrip(mgr, url, opts)
  local out, rc, err = T.wait(job, mgr, 30000)
  T.eq(rc, 0, "python server exit status: " .. err)
  return P.kv(out), response
end

-- Python websockets code run inside one connection ws to url (body
-- indented for the async with block, 8 spaces).
function _M.py_ws(mgr, url, body)
  return _M.py(mgr, url, "async def main():\n    async with connect() as ws:\n" .. body)
end

return _M
