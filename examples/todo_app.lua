-- A small TODO app on mongoose.web: a static page (examples/todo/), a JSON
-- REST API, a login cookie (a server-side session), live updates over
-- server-sent events to every open page, gzip, CORS for one other origin,
-- a file attachment per item (multipart, streamed to disk), and a
-- combined access log on stderr.
--
--   PORT=8080 luajit examples/todo_app.lua      then open http://127.0.0.1:8080/
--
-- Stops cleanly on SIGINT (Ctrl-C) or SIGTERM.
local mongoose = require("mongoose")
local web = require("mongoose.web")

local port = tonumber(os.getenv("PORT") or "8080")
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local uploads = os.getenv("UPLOAD_DIR") or os.tmpname() .. ".d"
os.execute("mkdir -p '" .. uploads .. "'")

local mgr = assert(mongoose.new_manager())
local sessions = web.session.new({ secret = os.getenv("SECRET") or web.crypto.token(32) })
local live = web.groups.new()
local todos, next_id = {}, 1

local app = web.new()
app:on_response(web.log.access_log(io.stderr))
app:use(web.compress.new())
app:use(web.cors.new({ origins = { "http://localhost:" .. port }, credentials = true }))
app:use(sessions:middleware())
app:use(function(req) -- the user in the access log
  req.user = req.session and req.session.user
end)

local function publish(event, todo)
  live:broadcast("todos", { event = event, id = todo.id, data = web.body.encode_json(todo) })
end

local function list()
  local out = web.body.array()
  for id = 1, next_id - 1 do
    out[#out + 1] = todos[id]
  end
  return out
end

-- A handler of /todos/:id: fn(req, res, todo) for a todo that exists, else 404.
local function with_todo(fn)
  return function(req, res)
    local todo = todos[tonumber(req.params.id)]
    if not todo then
      return 404, { error = "no such todo" }
    end
    return fn(req, res, todo)
  end
end

-- The API wants a logged-in user.
local api = web.new()
api:use(function(req)
  if not (req.session and req.session.user) then
    return 401, { error = "log in first" }
  end
end)
api:use(web.body.json_body({ require = false }))
api:get("/todos", function() return 200, list() end, "todos")
api:post("/todos", function(req)
  local title = type(req.json) == "table" and req.json.title
  if type(title) ~= "string" or title == "" then
    return 400, { error = "title is required" }
  end
  local todo = { id = next_id, title = title, done = false, by = req.session.user }
  todos[next_id], next_id = todo, next_id + 1
  publish("created", todo)
  return 201, todo, { Location = "/api/todos/" .. todo.id }
end)
api:patch("/todos/:id", with_todo(function(req, _, todo)
  if type(req.json) == "table" and req.json.done ~= nil then
    todo.done = req.json.done == true
  end
  publish("updated", todo)
  return 200, todo
end))
api:delete("/todos/:id", with_todo(function(_, _, todo)
  todos[todo.id] = nil
  publish("deleted", todo)
  return 204, ""
end))
api:post("/todos/:id/attachment", with_todo(function(req, res, todo)
  return web.multipart.handle(req, res, { dir = uploads, max_file_size = 64 * 1024 * 1024 },
                              function(result, err, status)
    if not result then
      return status, { error = err }
    end
    local f = result.files[1]
    todo.attachment = f and { name = f.filename, size = f.size } or nil
    publish("updated", todo)
    return 200, todo
  end)
end))
app:mount("/api", api)

app:post("/login", function(req, res)
  local body = web.body.json(req) or web.body.form(req) or {}
  local user = type(body.user) == "string" and body.user:match("^[%w_.-]+$")
  if not user then
    return 400, { error = "user must be letters, digits, '_', '.' or '-'" }
  end
  sessions:start(req, res).user = user
  return 200, { user = user }
end)
app:post("/logout", function(req, res)
  sessions:destroy(req, res)
  return 200, { user = web.body.cjson().null }
end)
app:get("/me", function(req)
  return 200, { user = req.session and req.session.user or web.body.cjson().null }
end)
app:get("/events", function(req, res)
  if not (req.session and req.session.user) then
    return 401, "log in first\n"
  end
  local stream = assert(web.sse.start(req, res, { retry = 1000 }))
  live:join("todos", stream)
  stream:send({ event = "hello", data = req.session.user })
end)
app:static("/", here .. "/todo")

local listener = assert(app:listen(mgr, "http://127.0.0.1:" .. port, { stream_threshold = 1024 * 1024 }))
print(string.format("todo: serving on http://%s (Ctrl-C to stop)", (listener:local_addr())))
io.stdout:flush()
mgr:run({ signals = { "INT", "TERM" } })
print("todo: stopped")
