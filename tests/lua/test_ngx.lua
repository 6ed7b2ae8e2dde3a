-- mongoose.ngx: the ngx table for OpenResty libraries. Known-answer
-- vectors for base64 (RFC 4648), MD5 (RFC 1321), SHA-1 and HMAC-SHA1
-- (RFC 2202), URI escaping, args, time, logging, timers, light threads,
-- semaphores, ngx.re, and the global.
local T = require("testlib")
_G.ngx = nil
local ngx = require("mongoose.ngx")

local mgr, logs = T.logging_manager({ log_level = "debug" })

local function in_task(fn)
  return T.in_task(mgr, fn)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

T.test("require installs the global ngx when there is none", function()
  T.eq(rawget(_G, "ngx"), ngx, "the global")
  T.eq(package.loaded["ngx.semaphore"], ngx.semaphore, "require('ngx.semaphore')")
  T.ok(ngx.null ~= nil and ngx.null ~= false, "ngx.null is a value")
  T.eq(ngx.OK, 0, "ngx.OK")
  T.eq(ngx.ERR, 4, "ngx.ERR")
  T.ok(ngx.config.ngx_lua_version >= 9011, "ngx.config.ngx_lua_version")
end)

T.test("base64: RFC 4648 vectors, no padding, invalid input", function()
  local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                    fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
  for plain, coded in pairs(vectors) do
    T.eq(ngx.encode_base64(plain), coded, "encode " .. plain)
    T.eq(ngx.decode_base64(coded), plain, "decode " .. coded)
  end
  T.eq(ngx.encode_base64("fo", true), "Zm8", "no padding")
  T.eq(ngx.decode_base64("Zm8"), "fo", "unpadded input")
  local bytes = T.random_bytes(1000, 9)
  T.eq(ngx.decode_base64(ngx.encode_base64(bytes)), bytes, "1000 random bytes round trip")
  T.eq(ngx.decode_base64("Zm9v!"), nil, "a byte outside the alphabet")
  T.eq(ngx.decode_base64("Z"), nil, "a lone character")
end)

T.test("md5 (RFC 1321), sha1_bin and hmac_sha1 (RFC 2202)", function()
  T.eq(ngx.md5(""), "d41d8cd98f00b204e9800998ecf8427e", "md5 of empty")
  T.eq(ngx.md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0", "md5")
  T.eq(hex(ngx.md5_bin("abc")), "900150983cd24fb0d6963f7d28e17f72", "md5_bin")
  T.eq(hex(ngx.sha1_bin("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d", "sha1")
  T.eq(hex(ngx.hmac_sha1(string.rep("\11", 20), "Hi There")),
       "b617318655057264e28bc0b6fb378c8ef146be00", "HMAC-SHA1 case 1")
  T.eq(hex(ngx.hmac_sha1("Jefe", "what do ya want for nothing?")),
       "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", "HMAC-SHA1 case 2")
  T.eq(hex(ngx.hmac_sha1(string.rep("\170", 80), "Test Using Larger Than Block-Size Key - Hash Key First")),
       "aa4ae5e15272d00e95705637ce8a3b55ed402112", "HMAC-SHA1 case 6 (a long key)")
end)

T.test("escape_uri, unescape_uri, encode_args, decode_args", function()
  T.eq(ngx.escape_uri("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9", "a URI component")
  T.eq(ngx.escape_uri("a b/c?d#e", 0), "a%20b/c%3Fd%23e", "a full URI")
  T.eq(ngx.unescape_uri("a%20b+c%2f"), "a b c/", "unescape")
  T.eq(ngx.encode_args({ a = "1 2" }), "a=1%202", "encode_args")
  local args = ngx.decode_args("a=1&b=x%20y&b=2&flag")
  T.eq(args.a, "1", "a")
  T.eq(args.b[1], "x y", "b[1]")
  T.eq(args.b[2], "2", "b[2]")
  T.eq(args.flag, true, "a key without a value")
end)

T.test("time: now, time, http_time", function()
  T.ok(math.abs(ngx.now() - os.time()) < 2, "now is the wall clock")
  T.eq(ngx.time(), os.time(), "time")
  T.eq(ngx.http_time(0), "Thu, 01 Jan 1970 00:00:00 GMT", "http_time")
  T.match(ngx.today(), "^%d%d%d%d%-%d%d%-%d%d$", "today")
end)

T.test("ngx.log goes through the manager's log function", function()
  in_task(function()
    ngx.log(ngx.ERR, "failed: ", 42, " ", nil)
    ngx.log(ngx.DEBUG, "detail")
    T.eq(ngx.get_phase(), "content", "the phase of a task")
  end)
  local e = T.ok(T.find_log(logs, "failed: 42 nil", "error"), "the error line")
  T.eq(e.level, "error", "level")
  T.ok(T.find_log(logs, "detail", "debug"), "the debug line")
  T.eq(ngx.get_phase(), "init", "outside a task")
end)

T.test("ngx.sleep in seconds; timer.at and timer.every with arguments", function()
  local fired = {}
  in_task(function()
    local t0 = ngx.now()
    ngx.sleep(0.1)
    T.ok(ngx.now() - t0 >= 0.09, "slept 0.1 s")
    assert(ngx.timer.at(0.02, function(premature, a, b)
      fired.at = { premature, a, b, ngx.get_phase() }
    end, "x", 7))
    local n = 0
    assert(ngx.timer.every(0.01, function(premature)
      n = n + 1
      fired.every = n
    end))
    ngx.sleep(0.1)
  end)
  T.eq(fired.at[1], false, "premature")
  T.eq(fired.at[2], "x", "first argument")
  T.eq(fired.at[3], 7, "second argument")
  T.eq(fired.at[4], "timer", "the phase of a timer")
  T.ok(fired.every >= 3, "every fired " .. tostring(fired.every) .. " times")
  T.raises("delay must be a non%-negative number", ngx.timer.at, -1, print)
end)

T.test("ngx.thread: spawn runs at once until it waits; wait; kill", function()
  local order = {}
  in_task(function()
    local t = ngx.thread.spawn(function(x)
      order[#order + 1] = "child start"
      ngx.sleep(0.02)
      order[#order + 1] = "child end"
      return x, "two"
    end, "one")
    order[#order + 1] = "parent"
    local ok, a, b = ngx.thread.wait(t)
    T.eq(ok, true, "ok")
    T.eq(a, "one", "first result")
    T.eq(b, "two", "second result")
    local slow = ngx.thread.spawn(function() ngx.sleep(10) end)
    T.eq(ngx.thread.kill(slow), true, "kill")
    local ok2, err = ngx.thread.kill(slow)
    T.eq(ok2, nil, "a second kill")
    T.eq(err, "already terminated", "error")
    -- wait returns the first of several to end.
    local fast = ngx.thread.spawn(function() ngx.sleep(0.01) return "fast" end)
    local later = ngx.thread.spawn(function() ngx.sleep(0.5) return "later" end)
    local _, first = ngx.thread.wait(later, fast)
    T.eq(first, "fast", "the first to end")
    ngx.thread.kill(later)
  end)
  T.eq(table.concat(order, ","), "child start,parent,child end", "order")
end)

T.test("ngx.semaphore: wait in seconds, post, count", function()
  local semaphore = require("ngx.semaphore")
  in_task(function()
    local sem = semaphore.new(1)
    T.eq(sem:wait(0), true, "a resource was there")
    T.eq(sem:count(), 0, "none left")
    local got = {}
    for i = 1, 3 do
      ngx.thread.spawn(function()
        local ok, err = sem:wait(1)
        got[#got + 1] = ok and i or err
      end)
    end
    T.eq(sem:count(), -3, "three waiting")
    sem:post(2)
    ngx.sleep(0.01)
    T.eq(table.concat(got, ","), "1,2", "two woken in order")
    local ok, err = sem:wait(0.05)
    T.eq(ok, nil, "no resource")
    T.eq(err, "timeout", "timeout")
    sem:post(1)
    ngx.sleep(0.01)
    T.eq(table.concat(got, ","), "1,2,3", "the third")
  end)
end)

T.test("ngx.re: match with groups and names, find, gmatch, sub, gsub", function()
  if jit.os == "Windows" and not ngx.re.match("a", "a") then
    T.skip("no PCRE2 DLL for Windows here (ngx.re says it needs the PCRE2 library)")
  end
  local m = ngx.re.match("key=value; other=x", [[(\w+)=(?<val>\w+)]], "jo")
  T.eq(m[0], "key=value", "whole match")
  T.eq(m[1], "key", "group 1")
  T.eq(m.val, "value", "named group")
  local ctx = { pos = 10 }
  T.eq(ngx.re.match("key=value; other=x", [[(\w+)=]], "", ctx)[1], "other", "from ctx.pos")
  T.eq(ctx.pos, 18, "ctx.pos after the match")
  T.eq(ngx.re.match("ABC", "abc"), nil, "no match")
  T.eq(ngx.re.match("ABC", "abc", "i")[0], "ABC", "caseless")
  local from, to = ngx.re.find("hello world", "wor")
  T.eq(from, 7, "find from")
  T.eq(to, 9, "find to")
  local words = {}
  for w in ngx.re.gmatch("a1 b2 c3", [[([a-z])(\d)]]) do
    words[#words + 1] = w[1] .. w[2]
  end
  T.eq(table.concat(words, ","), "a1,b2,c3", "gmatch")
  T.eq(ngx.re.sub("hello world", "o", "0"), "hell0 world", "sub")
  local s, n = ngx.re.gsub("hello world", "(o)", "[$1]")
  T.eq(s, "hell[o] w[o]rld", "gsub with $1")
  T.eq(n, 2, "count")
  T.eq(ngx.re.gsub("a-b", "-", function(mm) return "<" .. mm[0] .. ">" end), "a<->b", "a function")
  local r, err = ngx.re.match("x", "(")
  T.eq(r, nil, "a bad regex")
  T.match(err, "failed to compile regex", "error")
end)

T.test("worker.exiting: false while running, true once the manager stops", function()
  local seen
  in_task(function()
    seen = ngx.worker.exiting()
  end)
  T.eq(seen, false, "running")
  local m2 = assert(require("mongoose").new_manager())
  local during
  m2:set_timeout(0, function()
    m2:stop()
    during = ngx.worker.exiting()
  end)
  m2:run()
  T.eq(during, true, "after stop()")
end)

T.run()
