-- The Autobahn port (tests/autobahn) from the Lua tests: runs
-- fuzzingclient.py against a server of this process, or fuzzingserver.py
-- for a client of this process, parses the per-case lines and checks them
-- against the runner's EXPECTED list (cases.py).
local T = require("testlib")
local P = require("testpy")
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
  return P.kv(out, "%S+")
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

-- The parsed results of a fuzzer's output, which must end with a summary
-- (an error at the caller's caller otherwise).
local function results(who, out, err)
  local r = _M.parse(out)
  if not r.summary then
    error(who .. " ended without a summary:\n" .. out:sub(-3000) .. "\n" .. err:sub(-3000), 3)
  end
  return r, out
end

-- An on_message that echoes every message as it came (Autobahn's testees
-- do), logging a failed send as an error on mgr.
local function echo(mgr)
  return function(ws, data, is_binary)
    local ok, err = ws:send(data, is_binary and "binary" or "text")
    if not ok and err ~= "closed" then
      mgr:log("error", "echo failed: " .. tostring(err))
    end
  end
end

-- Options o with the extra options opts (which win) copied in; returns o.
local function with(o, opts)
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  return o
end

--- Runs fuzzingclient.py against url while mgr polls; returns the parsed
-- results and the raw output.
function _M.fuzzingclient(mgr, url, args, timeout_ms)
  local out, _, err = T.run_client(mgr, "timeout -k 5 " .. math.floor(timeout_ms / 1000) .. " "
                                   .. script("fuzzingclient.py") .. " " .. T.q(url) .. " " .. _M.SLACK .. " " .. args,
                                   timeout_ms + 10000)
  return results("fuzzingclient.py", out, err)
end

--- An echo server for the fuzzer (Autobahn's testee servers echo every
-- message as it came); opts are extra ws_listen options.
function _M.echo_server(mgr, opts)
  local l = assert(mgr:ws_listen("http://127.0.0.1:0", with({ max_message = _M.MAX_MESSAGE, on_message = echo(mgr) },
                                                           opts)))
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
  local port = T.poll_for_output(mgr, job, "listening (%d+)", 20000)
  if not port then
    error("fuzzingserver.py did not start:\n" .. (T.read_file(job.base .. ".err") or ""), 2)
  end
  local base = "ws://127.0.0.1:" .. port

  -- One connection, until it closes; returns the messages it got.
  local function session(path, echoes, limit_ms)
    local got, closed = {}, false
    local echoing = echo(mgr)
    local ws, err = mgr:ws_connect(base .. path, with({
      max_message = _M.MAX_MESSAGE,
      on_message = function(ws, data, is_binary)
        got[#got + 1] = data
        if echoes then
          echoing(ws, data, is_binary)
        end
      end,
      on_close = function() closed = true end,
    }, opts))
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
  return results("fuzzingserver.py", out, err)
end

--- Defines the tests test_autobahn_client.lua and test_autobahn_server.lua
-- share: groups 1-7 and 10, and group 9, of the cases (AUTOBAHN_COUNT
-- round trips in 9.7/9.8, 1000 by default), through fuzz(args,
-- timeout_ms) (a fuzzer against this process's side, returning its
-- results), checked against EXPECTED[side]; who (the client, the echo
-- server) must log no error in logs.
function _M.suite(side, who, logs, fuzz)
  local count = tonumber(os.getenv("AUTOBAHN_COUNT") or "") or 1000
  local function run(patterns, timeout_ms)
    local r = fuzz("--cases " .. patterns .. " --count " .. count, timeout_ms)
    _M.check(r, side, patterns)
    T.eq(#logs, 0, "no errors logged by " .. who .. " (" .. (logs[1] and logs[1].msg or "") .. ")")
    return r
  end

  T.test("groups 1-7 and 10 (framing, pings, reserved bits and opcodes, fragments, UTF-8, close)", function()
    local r = run("1,2,3,4,5,6,7,10", 120000)
    -- The receiver fails the connection at the first invalid UTF-8 byte
    -- (6.4.x OK, where NON-STRICT would mean at the message's end).
    for _, id in ipairs({ "6.4.1", "6.4.2", "6.4.3", "6.4.4" }) do
      T.eq(r.by_id[id] and r.by_id[id].status, "OK", id .. " (fail-fast on invalid UTF-8)")
    end
  end)

  T.test("group 9 (messages up to 16 MiB, fragments, chops, round trips)", function()
    run("9", 150000)
  end)
end

--- A manager for the fuzzer's peer; errors in handlers are kept in logs.
function _M.manager()
  return T.logging_manager({ log_level = "error" })
end

_M.mongoose = mongoose

return _M
