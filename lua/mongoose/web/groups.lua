-- mongoose.web.groups: named groups (rooms) of WebSockets and SSE streams:
-- join, leave, broadcast to a group, counts. A member leaves every group
-- when its connection closes (a close hook), so nothing is kept for it.
local core = require("mongoose.core")

local type, error, next, setmetatable = type, error, next, setmetatable

local _M = {}

local Groups = core.class("mongoose.web.Groups")
_M.Groups = Groups

--- A new set of groups.
function _M.new()
  return setmetatable({ groups = {}, of_member = {} }, Groups)
end

local function check_name(name, level)
  if type(name) ~= "string" then
    error("group name must be a string", level + 1)
  end
end

--- Adds member (a WebSocket or mongoose.web.sse stream) to group name.
-- Returns true, or nil and "closed".
function Groups:join(name, member)
  check_name(name, 2)
  if type(member) ~= "table" or type(member.send) ~= "function"
     or type(member.add_close_hook) ~= "function" then
    error("member must be a WebSocket or an SSE stream", 2)
  end
  if member.closed then
    return nil, "closed"
  end
  local mine = self.of_member[member]
  if not mine then
    mine = {}
    self.of_member[member] = mine
    member:add_close_hook(function(m)
      self:leave_all(m)
    end)
  end
  if mine[name] then
    return true
  end
  local g = self.groups[name]
  if not g then
    g = { members = {}, count = 0 }
    self.groups[name] = g
  end
  g.members[member] = true
  g.count = g.count + 1
  mine[name] = true
  return true
end

--- Removes member from group name (a group left empty is freed).
function Groups:leave(name, member)
  check_name(name, 2)
  local mine = self.of_member[member]
  if not mine or not mine[name] then
    return false
  end
  mine[name] = nil
  local g = self.groups[name]
  g.members[member] = nil
  g.count = g.count - 1
  if g.count == 0 then
    self.groups[name] = nil
  end
  return true
end

--- Removes member from all its groups.
function Groups:leave_all(member)
  local mine = self.of_member[member]
  if not mine then
    return
  end
  local name = next(mine)
  while name ~= nil do
    self:leave(name, member)
    name = next(mine)
  end
  self.of_member[member] = nil
end

--- Sends data (kind: "text" or "binary" for WebSockets; an SSE stream
-- takes a string or an event table) to every member of group name but
-- except. Returns the number sent to and the number refused (closed, or
-- send queue full: a slow client misses the message).
function Groups:broadcast(name, data, kind, except)
  check_name(name, 2)
  local g = self.groups[name]
  if not g then
    return 0, 0
  end
  local sent, refused = 0, 0
  local m = next(g.members)
  while m ~= nil do
    local nxt = next(g.members, m) -- send may close m, which leaves
    if m ~= except then
      if m:send(data, kind) then
        sent = sent + 1
      else
        refused = refused + 1
      end
    end
    m = nxt
  end
  return sent, refused
end

--- Members of group name (0 when there is none).
function Groups:count(name)
  local g = self.groups[name]
  return g and g.count or 0
end

--- The names of the groups member is in (a new list); all groups' names
-- without member.
function Groups:names(member)
  local list = {}
  local t = member == nil and self.groups or self.of_member[member] or {}
  for name in next, t do
    list[#list + 1] = name
  end
  table.sort(list)
  return list
end

--- The members of group name (a new list).
function Groups:members(name)
  local list = {}
  local g = self.groups[name]
  if g then
    for m in next, g.members do
      list[#list + 1] = m
    end
  end
  return list
end

return _M
