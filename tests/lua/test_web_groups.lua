-- mongoose.web.groups with Python websockets clients: rooms joined by a
-- message, broadcasts reaching only their room (and not the sender when
-- excluded), counts, members freed when their connection closes, and an
-- SSE stream in a group beside WebSockets.
local T = require("testlib")
local P = require("testpy")
local web = require("mongoose.web")

T.need_python_module("websockets", "python3-websockets")

local mgr = T.logging_manager({ log_level = "info" })
local rooms = web.groups.new()
local app = web.new()
app:get("/ws", function(req, res)
  local room = req:query_params("room")
  res:upgrade({
    on_open = function(ws)
      rooms:join(room, ws)
      rooms:join("all", ws)
      ws:send("joined " .. room .. " (" .. rooms:count(room) .. ")")
    end,
    on_message = function(ws, data)
      if data == "leave" then
        rooms:leave(room, ws)
        ws:send("left")
        return
      end
      rooms:broadcast(room, room .. ": " .. data, "text", ws)
    end,
  })
end)
app:get("/events", function(req, res)
  local s = assert(web.sse.start(req, res, { heartbeat = 0 }))
  rooms:join("a", s)
  s:comment("joined")
end)
local listener = assert(app:listen(mgr, "http://127.0.0.1:0"))
local port = listener:port()

T.test("broadcast reaches its room only; counts; a member that left gets nothing", function()
  local out = P.check(mgr, P.WEBSOCKETS .. [[
async def main():
    base = URL
    a1 = await websockets.connect(base + "?room=a")
    out(await recv(a1))
    a2 = await websockets.connect(base + "?room=a")
    out(await recv(a2))
    b1 = await websockets.connect(base + "?room=b")
    out(await recv(b1))
    await a1.send("hi from a1")
    out("a2 got", await recv(a2))
    await nothing_more(b1, "b1 got", "b1 got nothing")
    await nothing_more(a1, "a1 got", "a1 got nothing (excluded)")
    await a2.send("leave")
    out(await recv(a2))
    await a1.send("second")
    await nothing_more(a2, "a2 got", "a2 got nothing after leaving")
    await a1.close(); await a2.close(); await b1.close()
]] .. P.MAIN, T.q("ws://127.0.0.1:" .. port .. "/ws"), 30000)
  T.match(out, "joined a %(1%)\njoined a %(2%)\njoined b %(1%)\n")
  T.match(out, "a2 got a: hi from a1\n")
  T.match(out, "b1 got nothing\n")
  T.match(out, "a1 got nothing %(excluded%)\n")
  T.match(out, "left\n")
  T.match(out, "a2 got nothing after leaving\n")
  T.ok(T.poll_until(mgr, function() return rooms:count("all") == 0 end, 3000),
       "members freed on close (all: " .. rooms:count("all") .. ")")
  T.eq(rooms:count("a"), 0)
  T.eq(#rooms:names(), 0, "empty groups are freed")
end)

T.test("an SSE stream in a group gets its broadcasts", function()
  local job = T.spawn("curl -sS -N -m 3 " .. T.q("http://127.0.0.1:" .. port .. "/events"))
  T.ok(T.poll_until(mgr, function() return rooms:count("a") == 1 end, 3000), "the stream joined")
  local sent = rooms:broadcast("a", { event = "chat", data = "to the stream" })
  T.eq(sent, 1)
  T.sleep_polling(mgr, 100)
  rooms:members("a")[1]:close()
  local out = T.wait(job, mgr, 10000)
  T.eq(out, ": joined\n\nevent: chat\ndata: to the stream\n\n")
  T.eq(rooms:count("a"), 0, "the closed stream left")
end)

T.run()
