-- The Autobahn port (tests/autobahn) from the Lua tests: runs
-- fuzzingclient.py against a server of this process, or fuzzingserver.py
-- for a client of this process, parses the per-case lines and checks them
-- against the runner's EXPECTED list (cases.py).
local T = require("testlib")
local mongoose = require("mongoose")

local _M = {}

_M.dir = T.source_dir .. "/tests/autobahn"
_M.MAX_MESSAGE = 16 * 1024 * 1024 -- Autobahn's largest message (9.1.6, 9.2.6)
-- The fuzzers' give-up timers (killAfter, closeAfter, close handshake)
-- times 3: patience on a loaded CI machine; a peer that acts at once gets
-- the same verdicts as with Autobahn's own timers.
_M.SLACK = "--slack 3"

local function script(name)
  return T.q(T.python) .. " " .. T.q(_M.dir .. "/" .. name)
end

--- Parses the runner's output: { list = { {id, status, detail}... },
-- by_id = { [id] = {status, detail} }, groups = { [g] = "line" },
-- summary = "summary: ..." }.
function _M.parse(out)
  local r = { list = {}, by_id = {}, groups = {} }
  for line in out:gmatch("[^\n]+") do
    local id, status, detail = line:match("^(%d+%.[%d%.]*%d) (%u[%u%-]+) ?(.*)$")
    if id then
      r.list[#r.list + 1] = { id = id, status = status, detail = detail }
      r.by_id[id] = { status = status, detail = detail }
    end
    local g = line:match("^group (%d+): ")
    if g then
      r.groups[g] = line
    end
    if line:find("^summary: ") then
      r.summary = line
    end
  end
  return r
end

--- The cases of EXPECTED[side] in cases.py: { [id] = reason }.
function _M.expected(side)
  local out, rc, err = T.run_client(nil, script("cases.py") .. " --expected " .. side, 20000)
  T.eq(rc, 0, "cases.py --expected " .. side .. " (" .. err .. ")")
  local t = {}
  for id, reason in out:gmatch("(%S+) ([^\n]*)\n") do
    t[id] = reason
  end
  return t
end

--- The ids the runner selects for patterns.
function _M.ids(patterns)
  local out, rc, err = T.run_client(nil, script("cases.py") .. " --list " .. T.q(patterns), 20000)
  T.eq(rc, 0, "cases.py --list (" .. err .. ")")
  local ids = {}
  for id in out:gmatch("([%d%.]+) [^\n]*\n") do
    ids[#ids + 1] = id
  end
  return ids
end

local PASSING = { OK = true, ["NON-STRICT"] = true, INFORMATIONAL = true }
_M.PASSING = PASSING

--- Checks results r for the cases of patterns: every case reported, every
-- failure listed in EXPECTED[side] and every listed case (that ran) failed;
-- allow_unimplemented: UNIMPLEMENTED counts as expected (the deflate
-- groups before the extension is agreed). Prints the per-group lines and
-- returns { [group] = {passed, total} }.
function _M.check(r, side, patterns, allow_unimplemented)
  local expected = _M.expected(side)
  local problems = {}
  local per_group = {}
  for _, id in ipairs(_M.ids(patterns)) do
    local g = id:match("^(%d+)")
    per_group[g] = per_group[g] or { passed = 0, total = 0, failed = {} }
    local pg = per_group[g]
    pg.total = pg.total + 1
    local got = r.by_id[id]
    if not got then
      problems[#problems + 1] = id .. ": no result"
    elseif PASSING[got.status] then
      pg.passed = pg.passed + 1
      if got.status ~= "OK" then
        print(side .. " " .. id .. " " .. got.status .. " " .. got.detail)
      end
      if expected[id] then
        problems[#problems + 1] = id .. " is listed in EXPECTED." .. side .. " but " .. got.status
          .. ": remove it from the list (" .. got.detail .. ")"
      end
    elseif got.status == "UNIMPLEMENTED" and allow_unimplemented then
      pg.unimplemented = (pg.unimplemented or 0) + 1
    else
      pg.failed[#pg.failed + 1] = id
      if not expected[id] then
        problems[#problems + 1] = id .. " " .. got.status .. " " .. got.detail
      end
    end
  end
  local groups = {}
  for g in pairs(per_group) do
    groups[#groups + 1] = g
  end
  table.sort(groups, function(a, b) return tonumber(a) < tonumber(b) end)
  for _, g in ipairs(groups) do
    local pg = per_group[g]
    print(string.format("%s group %s: %d/%d passed%s%s", side, g, pg.passed, pg.total,
                        #pg.failed > 0 and (", expected failures: " .. table.concat(pg.failed, " ")) or "",
                        pg.unimplemented and (", unimplemented: " .. pg.unimplemented) or ""))
  end
  if r.summary then
    print(side .. " " .. r.summary)
  end
  T.ok(#problems == 0, #problems .. " case(s) not as cases.py EXPECTED says:\n  " .. table.concat(problems, "\n  "))
  return per_group
end

--- Runs fuzzingclient.py against url while mgr polls; returns the parsed
-- results and the raw output.
function _M.fuzzingclient(mgr, url, args, timeout_ms)
  local out, _, err = T.run_client(mgr, "timeout -k 5 " .. math.floor(timeout_ms / 1000) .. " "
                                   .. script("fuzzingclient.py") .. " " .. T.q(url) .. " " .. _M.SLACK .. " " .. args,
                                   timeout_ms + 10000)
  local r = _M.parse(out)
  if not r.summary then
    error("fuzzingclient.py ended without a summary:\n" .. out:sub(-3000) .. "\n" .. err:sub(-3000), 2)
  end
  return r, out
end

--- An echo server for the fuzzer (Autobahn's testee servers echo every
-- message as it came); opts are extra ws_listen options.
function _M.echo_server(mgr, opts)
  local o = {
    max_message = _M.MAX_MESSAGE,
    on_message = function(ws, data, is_binary)
      local ok, err = ws:send(data, is_binary and "binary" or "text")
      if not ok and err ~= "closed" then
        mgr:log("error", "echo failed: " .. tostring(err))
      end
    end,
  }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", o))
  return l, "ws://127.0.0.1:" .. l:port() .. "/"
end

--- Runs fuzzingserver.py with args, and the library's client through every
-- case it selects, as Autobahn's testee clients do: /getCaseCount, then
-- /runCase?case=N for each (echoing every message, closing when asked),
-- then /updateReports. opts: extra ws_connect options; case_ms: the most a
-- case may take. Returns the parsed results and the raw output.
function _M.fuzzingserver(mgr, args, timeout_ms, opts, case_ms)
  local job = T.spawn("timeout -k 5 " .. math.floor(timeout_ms / 1000) .. " " .. script("fuzzingserver.py")
                      .. " --timeout " .. math.floor(timeout_ms / 1000 - 5) .. " " .. _M.SLACK .. " " .. args)
  local port
  T.poll_until(mgr, function()
    port = (T.read_file(job.base .. ".out") or ""):match("listening (%d+)")
    return port ~= nil or T.read_file(job.base .. ".rc") ~= nil
  end, 20000)
  if not port then
    error("fuzzingserver.py did not start:\n" .. (T.read_file(job.base .. ".err") or ""), 2)
  end
  local base = "ws://127.0.0.1:" .. port

  -- One connection, until it closes; returns the messages it got.
  local function session(path, echo, limit_ms)
    local got, closed = {}, false
    local o = {
      max_message = _M.MAX_MESSAGE,
      on_message = function(ws, data, is_binary)
        got[#got + 1] = data
        if echo then
          local ok, err = ws:send(data, is_binary and "binary" or "text")
          if not ok and err ~= "closed" then
            mgr:log("error", "echo failed: " .. tostring(err))
          end
        end
      end,
      on_close = function() closed = true end,
    }
    for k, v in pairs(opts or {}) do
      o[k] = v
    end
    local ws, err = mgr:ws_connect(base .. path, o)
    if not ws then
      error("ws_connect " .. path .. ": " .. tostring(err), 3)
    end
    if not T.poll_until(mgr, function() return closed end, limit_ms) then
      ws:close(1001, "case timed out")
      T.poll_until(mgr, function() return closed end, 3000)
    end
    return got
  end

  local count = tonumber(session("/getCaseCount", false, 10000)[1])
  if not count then
    error("no case count from fuzzingserver.py:\n" .. (T.read_file(job.base .. ".out") or ""), 2)
  end
  for i = 1, count do
    session("/runCase?case=" .. i .. "&agent=mongoose-ffi", true, case_ms or 30000)
  end
  session("/updateReports?agent=mongoose-ffi", false, 10000)
  local out, _, err = T.wait(job, mgr, timeout_ms)
  local r = _M.parse(out)
  if not r.summary then
    error("fuzzingserver.py ended without a summary:\n" .. out:sub(-3000) .. "\n" .. err:sub(-3000), 2)
  end
  return r, out
end

--- A manager for the fuzzer's peer; errors in handlers are kept in logs.
function _M.manager()
  return T.logging_manager({ log_level = "error" })
end

_M.mongoose = mongoose

return _M
