-- The library as Autobahn's testee client, for running the port by hand:
--   python3 tests/autobahn/fuzzingserver.py --port 9001 &
--   scripts/lua-env.sh luajit tests/autobahn/echo_client.lua ws://127.0.0.1:9001 [deflate]
-- Asks /getCaseCount, runs /runCase?case=N for each case (echoing every
-- message, closing when the server does), then /updateReports: the
-- fuzzing server prints the results and exits. With "deflate", the client
-- offers permessage-deflate (groups 12 and 13), which it does not by
-- default.
local mongoose = require("mongoose")

local base = arg[1] or "ws://127.0.0.1:9001"
local deflate = arg[2] == "deflate" or nil
local mgr = assert(mongoose.new_manager())

-- One connection until it closes; returns its first message.
local function session(path, echo)
  local first, closed
  assert(mgr:ws_connect(base .. path, {
    max_message = 16 * 1024 * 1024,
    deflate = deflate,
    on_message = function(ws, data, is_binary)
      first = first or data
      if echo then
        ws:send(data, is_binary and "binary" or "text")
      end
    end,
    on_close = function() closed = true end,
  }))
  while not closed do
    mgr:poll(50)
  end
  return first
end

local count = assert(tonumber(session("/getCaseCount")), "no case count")
for i = 1, count do
  session("/runCase?case=" .. i .. "&agent=mongoose-ffi", true)
end
session("/updateReports?agent=mongoose-ffi")
print(count .. " cases run")
