-- Headless Chromium for the web layer's tests (the pattern of
-- test_browser.lua): a fresh profile per run, bounded by timeout(1).
local T = require("testlib")

local _M = {}

--- The chromium command, or nil.
function _M.find()
  for _, name in ipairs({ "chromium", "chromium-browser" }) do
    if T.have_command(name) then
      return name
    end
  end
  return nil
end

--- Skips the file (T.skip) without chromium.
function _M.need()
  local c = _M.find()
  if not c then
    T.skip("chromium is not installed (apt-get install chromium)")
  end
  _M.chromium = c
  return c
end

local profile_seq = 0

--- Runs headless Chromium with extra args while mgr (if given) polls;
-- returns stdout, exit code, stderr.
function _M.run(mgr, args)
  profile_seq = profile_seq + 1
  local profile = string.format("%s/chromium-profile-%d", T.tmpdir(), profile_seq)
  os.execute("mkdir -p " .. T.q(profile))
  local cmd = table.concat({
    "timeout -k 5 60", _M.chromium or _M.need(), "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--no-first-run", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--user-data-dir=" .. T.q(profile), args,
  }, " ")
  return T.run_client(mgr, cmd, 90000)
end

--- The DOM of url after the page ran for budget_ms of virtual time.
function _M.dump_dom(mgr, url, budget_ms)
  local dom, rc, err = _M.run(mgr, "--virtual-time-budget=" .. (budget_ms or 5000)
                              .. " --dump-dom " .. T.q(url))
  T.eq(rc, 0, "chromium --dump-dom exit status (stderr: " .. err:sub(-500) .. ")")
  return dom
end

return _M
