-- mongoose.luv: runs a manager inside a libuv loop (luv), for luvit, evo or
-- plain LuaJIT with Debian's lua-luv, without busy polling.
--
-- Mongoose's epoll descriptor becomes readable whenever a poll would find
-- I/O; one luv poll handle watches it. A luv prepare handle runs once per
-- loop iteration (only when the loop woke up for something) and polls when
-- the glue says work is pending (a reply queued by a luv callback, a
-- closing connection); one luv timer wakes the loop for the next Lua
-- timer. An idle process sleeps in the kernel.
local ffi = require("ffi")
local core = require("mongoose.core")

ffi.cdef [[
int mgffi_manager_fd(const mgffi_manager *m);
int mgffi_poll_hint(const mgffi_manager *m);
]]

local C, type, error, tonumber = core.C, type, error, tonumber
local C_millis, C_poll_hint = C.mgffi_millis, C.mgffi_poll_hint

local _M = {}

-- Polls while the glue reports work that needs a poll now; bounded, and
-- stops early when a poll changes nothing (waiting on the kernel).
local function poll_pending(att, first)
  local mgr = att.mgr
  if mgr.closed or mgr.luv ~= att then
    return
  end
  if first then
    mgr:poll(0)
  end
  for _ = 1, 8 do
    -- A handler may have closed or detached the manager meanwhile.
    if mgr.closed or mgr.luv ~= att or C_poll_hint(mgr.cm) ~= 0 then
      return
    end
    if mgr:poll(0) == 0 and C_poll_hint(mgr.cm) == 0 then
      return
    end
  end
end

-- Re-arms the luv timer for the next Lua timer, task deadline or ready
-- task, or Mongoose's own deadline.
local function arm_timer(att)
  local mgr = att.mgr
  if mgr.closed or mgr.luv ~= att or att.timer == nil then
    return
  end
  local now = tonumber(C_millis())
  local due = mgr:next_due(now) -- timers, and tasks' deadlines (mongoose.coro)
  local hint = C_poll_hint(mgr.cm)
  if hint > 0 and (due == nil or hint < due) then
    due = hint
  end
  if due == nil then
    if att.timer_due then
      att.timer:stop()
      att.timer_due = nil
    end
    return
  end
  local deadline = now + due
  if att.timer_due ~= deadline then
    att.timer_due = deadline
    att.timer:start(due, 0, att.on_timer)
  end
end

--- Attaches mgr to the luv loop of uv (the luv module). opts.mode:
-- "epoll" (default: watch Mongoose's epoll fd, no CPU when idle) or
-- "interval" (poll every opts.interval ms, default 10: simpler, costs a
-- wake-up per interval even when idle). Returns an attachment, or nil, err.
function _M.attach(mgr, uv, opts)
  if type(uv) ~= "table" or type(uv.new_poll) ~= "function" then
    error("uv must be the luv module", 3)
  end
  opts = core.opt_table(opts, 3)
  local mode = opts.mode or "epoll"
  if mode ~= "epoll" and mode ~= "interval" then
    error("mode must be \"epoll\" or \"interval\"", 3)
  end
  if mgr.luv then
    return nil, "manager is already attached to a luv loop"
  end
  local att = { mgr = mgr, uv = uv, mode = mode }

  if att.mode == "interval" then
    local interval = opts.interval or 10
    if type(interval) ~= "number" or interval <= 0 then
      error("interval must be a positive number of ms", 3)
    end
    att.timer = uv.new_timer()
    att.timer:start(interval, interval, function()
      poll_pending(att, true)
    end)
  elseif att.mode == "epoll" then
    local fd = C.mgffi_manager_fd(mgr.cm)
    if fd < 0 then
      return nil, "this build of Mongoose has no epoll descriptor; use mode = \"interval\""
    end
    att.timer = uv.new_timer()
    att.on_timer = function()
      att.timer_due = nil
      poll_pending(att, true)
      arm_timer(att)
    end
    att.poll = uv.new_poll(fd)
    att.poll:start("r", function(err)
      if err then
        mgr:log("error", "luv poll on the Mongoose descriptor failed: " .. tostring(err))
        return
      end
      poll_pending(att, true)
      arm_timer(att)
    end)
    att.prepare = uv.new_prepare()
    att.prepare:start(function()
      if mgr.luv == att and not mgr.closed and C_poll_hint(mgr.cm) == 0 then
        poll_pending(att, false)
      end
      arm_timer(att)
    end)
    arm_timer(att)
  else
    error("mode must be \"epoll\" or \"interval\"", 3)
  end
  mgr.luv = att
  return att
end

--- Detaches mgr from its luv loop: stops and closes the handles. The
-- manager keeps its connections; poll it yourself or attach it again.
function _M.detach(mgr)
  local att = mgr.luv
  if not att then
    return false
  end
  mgr.luv = nil
  for _, name in ipairs({ "poll", "prepare", "timer" }) do
    local h = att[name]
    if h then
      if not h:is_closing() then
        h:stop()
        h:close()
      end
      att[name] = nil
    end
  end
  return true
end

return _M
