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

-- 256 bytes 0..255 repeated: n must be a multiple of 256.
function _M.byte_pattern(n)
  local t = {}
  for i = 0, 255 do
    t[#t + 1] = string.char(i)
  end
  return table.concat(t):rep(n / 256)
end

return _M
