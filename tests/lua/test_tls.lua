-- TLS (mongoose.tls): HTTPS, WSS and tls:// servers and clients against
-- curl, openssl s_client and the library's own clients, all on 127.0.0.1 /
-- localhost, with the throwaway PKI of testtls.lua; skipped in a build
-- without TLS. Python's websockets over WSS: test_tls_websockets.lua.
--
-- Handlers only record what they see; assertions run outside them.
local T = require("testlib")
local X = require("testtls")
local P = require("testpy")
local W = require("testws")
local mongoose = require("mongoose")
local tls = require("mongoose.tls")
local pki, file, hello, https_server, curl, s_client = X.pki, X.file, X.hello, X.https_server, X.curl, X.s_client
local CA, SRV_CERT, SRV_KEY, CLI_CERT, CLI_KEY = X.CA, X.SRV_CERT, X.SRV_KEY, X.CLI_CERT, X.CLI_KEY
local SERVER_TLS = X.SERVER_TLS

---------------------------------------------------------------------------
-- Servers against standard clients
---------------------------------------------------------------------------

T.test("backend is openssl or builtin", function()
  T.ok(tls.backend == "openssl" or tls.backend == "builtin", "backend " .. tls.backend)
  T.ok(tls.is_tls_url("https://x") and tls.is_tls_url("WSS://x") and tls.is_tls_url("tls://x:1"))
  T.ok(not tls.is_tls_url("http://x") and not tls.is_tls_url("ws://x"))
end)

T.test("HTTPS server: curl --cacert verifies it; curl without the CA refuses", function()
  local mgr, _, port = https_server()
  local body, rc, err = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/a")
  T.eq(rc, 0, "curl exit (" .. err .. ")")
  T.eq(body, "secure /a")
  -- By IP address too (the certificate has IP:127.0.0.1).
  body, rc = curl(mgr, "--cacert " .. T.q(CA) .. " https://127.0.0.1:" .. port .. "/ip")
  T.eq(rc, 0, "curl exit by IP")
  T.eq(body, "secure /ip")
  -- Without the test CA, curl cannot verify the certificate (exit 60).
  local _, rc2 = curl(mgr, "https://localhost:" .. port .. "/")
  T.eq(rc2, 60, "curl exit without --cacert")
  -- Plain HTTP to the TLS port is no request.
  local _, rc3 = curl(mgr, "-o /dev/null http://127.0.0.1:" .. port .. "/")
  T.ok(rc3 ~= 0, "plain http to an https port fails")
  -- Keep-alive: several requests on one connection.
  local out, rc4 = curl(mgr, "--cacert " .. T.q(CA) .. " -w ' %{num_connects}' https://localhost:" .. port
                        .. "/1 https://localhost:" .. port .. "/2")
  T.eq(rc4, 0, "two requests")
  T.eq(out, "secure /1 1secure /2 0", "second request on the same connection")
  mgr:close()
end)

T.test("HTTPS keep-alive: a connection idle past parking answers again, also a request split over records", function()
  local mgr, _, port = https_server()
  local out, rc, err = T.run_client(mgr, T.q(T.python) .. " " .. T.q(P.file([[
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
s.settimeout(5)
def ask(path, split=False):
    req = b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    if split:
        s.sendall(req[:9])
        time.sleep(0.4)
        s.sendall(req[9:])
    else:
        s.sendall(req)
    d = b""
    while not d.endswith(path):
        d += s.recv(4096)
    return d.split(b"\r\n")[0].decode() + " " + d.rsplit(b"\r\n", 1)[-1].decode()
print(ask(b"/1"))
time.sleep(0.6)
print(ask(b"/2"))
time.sleep(0.6)
print(ask(b"/3", split=True))
]])) .. " " .. port .. " " .. T.q(CA), 20000)
  T.eq(rc, 0, "python exit (" .. err .. ")")
  T.eq(out, "HTTP/1.1 200 OK secure /1\nHTTP/1.1 200 OK secure /2\nHTTP/1.1 200 OK secure /3\n")
  mgr:close()
end)

T.test("HTTPS server: cert and key as PEM strings", function()
  local mgr, _, port = https_server({ tls = { cert = T.read_file(SRV_CERT), key = T.read_file(SRV_KEY) } })
  local body, rc = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/pem")
  T.eq(rc, 0, "curl exit")
  T.eq(body, "secure /pem")
  mgr:close()
end)

T.test("openssl s_client: the right certificate, TLS 1.2 and 1.3 only", function()
  local mgr, _, port = https_server()
  local out, rc = s_client(mgr, port, "-CAfile " .. T.q(CA) .. " -servername localhost")
  T.eq(rc, 0, "s_client exit: " .. out)
  T.match(out, "subject=CN = localhost")
  T.match(out, "issuer=CN = mgffi test CA")
  T.match(out, "Verify return code: 0 %(ok%)")
  T.match(out, "New, TLSv1%.3,", "default protocol")
  out = s_client(mgr, port, "-CAfile " .. T.q(CA) .. " -tls1_2")
  T.match(out, "New, TLSv1%.2,", "TLS 1.2 accepted")
  T.match(out, "Protocol  : TLSv1%.2")
  out = s_client(mgr, port, "-CAfile " .. T.q(CA) .. " -tls1_3")
  T.match(out, "New, TLSv1%.3,", "TLS 1.3 accepted")
  -- TLS 1.1 (the client's security level lowered so that it offers it) is
  -- refused by the server.
  local old, old_rc = s_client(mgr, port, "-tls1_1 -cipher 'DEFAULT@SECLEVEL=0'")
  T.ok(old_rc ~= 0, "s_client -tls1_1 exit status")
  T.ok(not old:find("New, TLSv1%.1"), "no TLS 1.1 session")
  if tls.backend == "openssl" then
    T.match(old, "alert protocol version", "refused by the server")
  end
  -- Still serving.
  local body = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/after")
  T.eq(body, "secure /after")
  mgr:close()
end)

---------------------------------------------------------------------------
-- The library's own clients against its servers
---------------------------------------------------------------------------

T.test("own HTTPS client: fetch verifies with the test CA and the host name", function()
  local mgr, _, port = https_server()
  local r, err = mgr:fetch("https://localhost:" .. port .. "/own", { tls = { ca = CA }, timeout = 5000 })
  T.ok(r, "fetch: " .. tostring(err))
  T.eq(r.status, 200)
  T.eq(r.body, "secure /own")
  -- The CA as a PEM string.
  r, err = mgr:fetch("https://localhost:" .. port .. "/pem",
                     { tls = { ca = T.read_file(CA) }, timeout = 5000 })
  T.ok(r, "fetch with a PEM CA: " .. tostring(err))
  T.eq(r.body, "secure /pem")
  -- Asynchronous: http_request, two at once.
  local bodies, pending = {}, 2
  for i = 1, 2 do
    assert(mgr:http_request("https://localhost:" .. port .. "/async" .. i, { tls = { ca = CA } },
                            function(resp, e)
                              bodies[i] = resp and resp.body or e
                              pending = pending - 1
                            end))
  end
  T.ok(T.poll_until(mgr, function() return pending == 0 end, 10000), "both callbacks ran")
  T.eq(bodies[1], "secure /async1")
  T.eq(bodies[2], "secure /async2")
  mgr:close()
end)

T.test("own HTTPS client: the system CAs (default) do not know the test CA", function()
  local mgr, _, port = https_server()
  local r, err = mgr:fetch("https://localhost:" .. port .. "/", { timeout = 5000 })
  T.eq(r, nil, "no response")
  T.match(err, "TLS handshake failed")
  -- The listener keeps serving.
  r = mgr:fetch("https://localhost:" .. port .. "/next", { tls = { ca = CA }, timeout = 5000 })
  T.eq(r and r.body, "secure /next")
  mgr:close()
end)

T.test("own HTTPS client: a wrong host name fails verification", function()
  local mgr, _, port = https_server()
  local r, err = mgr:fetch("https://localhost:" .. port .. "/", {
    tls = { ca = CA, name = "wrong.example" }, timeout = 5000 })
  T.eq(r, nil, "no response for the wrong name")
  T.match(err, "TLS handshake failed")
  -- The right name given explicitly works.
  r, err = mgr:fetch("https://localhost:" .. port .. "/named",
                     { tls = { ca = CA, name = "localhost" }, timeout = 5000 })
  T.ok(r, "fetch with name = localhost: " .. tostring(err))
  T.eq(r.body, "secure /named")
  mgr:close()
end)

T.test("own HTTPS client: a CA that did not sign the server is refused", function()
  local mgr, _, port = https_server()
  local r, err = mgr:fetch("https://localhost:" .. port .. "/",
                           { tls = { ca = file("other.pem") }, timeout = 5000 })
  T.eq(r, nil)
  T.match(err, "TLS handshake failed")
  mgr:close()
end)

T.test("insecure = true works against a self-signed server; verification refuses it", function()
  local mgr, _, port = https_server({ tls = { cert = file("self.pem"), key = file("self.key") } })
  local url = "https://localhost:" .. port .. "/self"
  local r, err = mgr:fetch(url, { tls = { insecure = true }, timeout = 5000 })
  T.ok(r, "insecure fetch: " .. tostring(err))
  T.eq(r.body, "secure /self")
  r, err = mgr:fetch(url, { tls = { ca = CA }, timeout = 5000 })
  T.eq(r, nil, "verified fetch refused")
  T.match(err, "TLS handshake failed")
  -- Trusting the self-signed certificate itself works.
  r, err = mgr:fetch(url, { tls = { ca = file("self.pem") }, timeout = 5000 })
  T.ok(r, "fetch trusting self.pem: " .. tostring(err))
  mgr:close()
end)

T.test("own WSS client against its WSS server", function()
  local mgr = assert(mongoose.new_manager())
  local l = assert(mgr:ws_listen("wss://127.0.0.1:0/chat", {
    tls = SERVER_TLS,
    on_message = function(ws, data)
      ws:send("echo: " .. data)
    end,
  }))
  local got, closed, errors = nil, false, {}
  local ws, err = mgr:ws_connect("wss://localhost:" .. l:port() .. "/chat", {
    tls = { ca = CA },
    on_open = function(w)
      w:send("hi over wss")
    end,
    on_message = function(w, data)
      got = data
      w:close()
    end,
    on_close = function()
      closed = true
    end,
    on_error = W.errors_into(errors),
  })
  T.ok(ws, "ws_connect: " .. tostring(err))
  T.ok(T.poll_until(mgr, function() return closed end, 10000),
       "closed; errors: " .. table.concat(errors, "; "))
  T.eq(got, "echo: hi over wss")
  -- Without the CA: the handshake fails, on_error then on_close.
  local failed, closed2 = nil, false
  ws = mgr:ws_connect("wss://localhost:" .. l:port() .. "/chat", {
    tls = { ca = file("other.pem") },
    on_open = function() failed = "unexpected open" end,
    on_error = function(_, e) failed = e end,
    on_close = function() closed2 = true end,
  })
  T.ok(ws)
  T.ok(T.poll_until(mgr, function() return closed2 end, 10000), "refused connection closed")
  T.match(failed, "TLS handshake failed")
  mgr:close()
end)

T.test("tls:// TCP: own client and server; a handshake failure reaches on_error, the listener keeps serving",
       function()
  local mgr = assert(mongoose.new_manager())
  local server_errors = {}
  local l = assert(mgr:tcp_listen("tls://127.0.0.1:0", {
    tls = SERVER_TLS,
    on_data = function(conn, view)
      conn:send("echo " .. view:string())
    end,
    on_error = function(_, e)
      server_errors[#server_errors + 1] = e
    end,
  }))
  local url = "tls://localhost:" .. l:port()
  local function client(tls_opts)
    local r = { data = "", closed = false }
    local c, err = mgr:tcp_connect(url, {
      tls = tls_opts,
      on_connect = function(conn) conn:send("ping") end,
      on_data = function(conn, view)
        r.data = r.data .. view:string()
        conn:close()
      end,
      on_error = function(_, e) r.error = e end,
      on_close = function() r.closed = true end,
    })
    T.ok(c, "tcp_connect: " .. tostring(err))
    T.ok(T.poll_until(mgr, function() return r.closed end, 10000), "client closed")
    return r
  end
  local good = client({ ca = CA })
  T.eq(good.data, "echo ping", "good client: " .. tostring(good.error))
  local bad = client({ ca = file("other.pem") })
  T.eq(bad.data, "", "nothing received")
  T.match(bad.error, "TLS handshake failed", "client on_error")
  T.ok(T.poll_until(mgr, function() return #server_errors > 0 end, 3000), "server side on_error")
  T.match(server_errors[1], "TLS handshake failed")
  local again = client({ ca = CA })
  T.eq(again.data, "echo ping", "the listener still serves")
  mgr:close()
end)

---------------------------------------------------------------------------
-- Robustness
---------------------------------------------------------------------------

T.test("a client sending garbage instead of a handshake does not disturb a good client", function()
  local failures = {}
  local mgr, _, port = https_server({
    tls = SERVER_TLS,
    on_connection_error = function(err, remote)
      failures[#failures + 1] = { err = err, remote = remote }
    end,
  })
  local script = T.tmpdir() .. "/tls_garbage.py"
  T.write_file(script, [[
import socket, sys, time
port = int(sys.argv[1])
# 1: plain text; 2: a TLS record header announcing a handshake, then junk;
# 3: half a record, then silence (the server must not wait for it).
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
b = socket.create_connection(("127.0.0.1", port), timeout=5)
b.sendall(b"\x16\x03\x01\x00\x40" + b"\xff" * 64)
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(b"\x16\x03\x01\x02\x00" + b"\x01" * 10)
print("sent", flush=True)
time.sleep(1.5)
for name, s in (("plain", a), ("junk", b)):
    try:
        data = s.recv(4096)
        print(name, "closed" if not data or data[:1] == b"\x15" else "got %r" % data[:20])
    except (ConnectionResetError, socket.timeout) as e:
        print(name, "closed" if isinstance(e, ConnectionResetError) else "timeout")
c.close()
]])
  local garbage = T.spawn(string.format("%s %s %d", T.q(T.python), T.q(script), port))
  -- Wait until the garbage is on the wire, then run good clients while the
  -- bad connections are open.
  local function sent()
    return (T.read_file(garbage.base .. ".out") or ""):find("sent")
  end
  T.ok(T.poll_until(mgr, sent, 10000),
       "garbage sent")
  for i = 1, 3 do
    local body, rc, err = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/good" .. i)
    T.eq(rc, 0, "curl " .. i .. " exit (" .. err .. ")")
    T.eq(body, "secure /good" .. i)
  end
  local r, err = mgr:fetch("https://localhost:" .. port .. "/own", { tls = { ca = CA }, timeout = 5000 })
  T.eq(r and r.body, "secure /own", "own client: " .. tostring(err))
  local out, rc, perr = T.wait(garbage, mgr, 15000)
  T.eq(rc, 0, "python exit (" .. perr .. ")")
  T.eq(out, "sent\nplain closed\njunk closed\n", "the bad connections were closed")
  -- The plain-text and the junk connection failed their handshakes (the
  -- half record may still be waiting): each reported on its own.
  T.ok(#failures >= 2, "on_connection_error calls: " .. #failures)
  for _, f in ipairs(failures) do
    T.match(f.err, "TLS handshake failed", "error text")
    T.match(f.remote, "^127%.0%.0%.1:%d+$", "remote address")
  end
  mgr:close()
end)

T.test("client certificates: the right one is accepted, a missing or foreign one refused", function()
  local mgr, _, port = https_server({ tls = { cert = SRV_CERT, key = SRV_KEY, ca = CA } })
  local base = "https://localhost:" .. port
  local cacert = "--cacert " .. T.q(CA) .. " "
  local body, rc, err = curl(mgr, cacert .. "--cert " .. T.q(CLI_CERT) .. " --key " .. T.q(CLI_KEY) .. " "
                             .. base .. "/mtls")
  T.eq(rc, 0, "curl with the client certificate (" .. err .. ")")
  T.eq(body, "secure /mtls")
  local _, rc2 = curl(mgr, cacert .. base .. "/nocert")
  T.ok(rc2 ~= 0, "curl without a client certificate fails (exit " .. tostring(rc2) .. ")")
  local _, rc3 = curl(mgr, cacert .. "--cert " .. T.q(file("self.pem")) .. " --key " .. T.q(file("self.key"))
                      .. " " .. base .. "/foreign")
  T.ok(rc3 ~= 0, "curl with a certificate of another CA fails (exit " .. tostring(rc3) .. ")")
  -- The own client, with and without its certificate.
  local r
  r, err = mgr:fetch(base .. "/own", { tls = { ca = CA, cert = CLI_CERT, key = CLI_KEY }, timeout = 5000 })
  T.ok(r, "own client with its certificate: " .. tostring(err))
  T.eq(r.body, "secure /own")
  r, err = mgr:fetch(base .. "/own-nocert", { tls = { ca = CA }, timeout = 5000 })
  T.eq(r, nil, "own client without a certificate")
  T.ok(err, "an error")
  -- Still serving.
  body = curl(mgr, cacert .. "--cert " .. T.q(CLI_CERT) .. " --key " .. T.q(CLI_KEY) .. " "
              .. base .. "/again")
  T.eq(body, "secure /again")
  mgr:close()
end)

---------------------------------------------------------------------------
-- Errors when opening
---------------------------------------------------------------------------

T.test("a TLS URL on a listener without opts.tls: nil, err", function()
  local mgr = assert(mongoose.new_manager())
  local before = mgr:connection_count()
  local l, err = mgr:http_listen("https://127.0.0.1:0", hello)
  T.eq(l, nil)
  T.match(err, "needs opts%.tls")
  l, err = mgr:ws_listen("wss://127.0.0.1:0/", { on_message = function() end })
  T.eq(l, nil)
  T.match(err, "needs opts%.tls")
  l, err = mgr:tcp_listen("tls://127.0.0.1:0", {})
  T.eq(l, nil)
  T.match(err, "needs opts%.tls")
  -- A cert without a key.
  l, err = mgr:http_listen("https://127.0.0.1:0", hello, { tls = { cert = SRV_CERT } })
  T.eq(l, nil)
  T.match(err, "tls%.cert and tls%.key")
  mgr:poll(0)
  T.eq(mgr:connection_count(), before, "no listener left behind")
  mgr:close()
end)

T.test("a missing, empty or unreadable cert/key/ca file: nil, err naming it", function()
  local mgr = assert(mongoose.new_manager())
  local missing = pki .. "/does-not-exist.pem"
  local l, err = mgr:http_listen("https://127.0.0.1:0", hello, { tls = { cert = missing, key = SRV_KEY } })
  T.eq(l, nil)
  T.ok(err:find(missing, 1, true), "names the cert file: " .. err)
  T.match(err, "cert")
  l, err = mgr:http_listen("https://127.0.0.1:0", hello, { tls = { cert = SRV_CERT, key = missing } })
  T.eq(l, nil)
  T.ok(err:find(missing, 1, true), "names the key file: " .. err)
  T.match(err, "key")
  T.write_file(file("empty.pem"), "")
  l, err = mgr:http_listen("https://127.0.0.1:0", hello,
                           { tls = { cert = file("empty.pem"), key = SRV_KEY } })
  T.eq(l, nil)
  T.ok(err:find(file("empty.pem"), 1, true), "names the empty file: " .. err)
  -- A folder cannot be read as a file.
  l, err = mgr:http_listen("https://127.0.0.1:0", hello, { tls = { cert = pki, key = SRV_KEY } })
  T.eq(l, nil, "a folder as cert")
  T.ok(err:find(pki, 1, true), "names the folder: " .. tostring(err))
  -- Servers ca, clients ca, cert, key.
  l, err = mgr:http_listen("https://127.0.0.1:0", hello,
                           { tls = { cert = SRV_CERT, key = SRV_KEY, ca = missing } })
  T.eq(l, nil)
  T.ok(err:find(missing, 1, true), "names the ca file: " .. err)
  local ok
  ok, err = mgr:http_request("https://localhost:1/", { tls = { ca = missing } }, function() end)
  T.eq(ok, nil)
  T.ok(err:find(missing, 1, true), "client ca: " .. err)
  local r
  r, err = mgr:fetch("https://localhost:1/", { tls = { ca = CA, cert = missing, key = CLI_KEY } })
  T.eq(r, nil)
  T.ok(err:find(missing, 1, true), "client cert: " .. err)
  local ws
  ws, err = mgr:ws_connect("wss://localhost:1/", { tls = { ca = missing } })
  T.eq(ws, nil)
  T.ok(err:find(missing, 1, true), "ws client ca: " .. err)
  local c
  c, err = mgr:tcp_connect("tls://localhost:1", { tls = { ca = missing } })
  T.eq(c, nil)
  T.ok(err:find(missing, 1, true), "tcp client ca: " .. err)
  T.eq(mgr:connection_count(), 0, "nothing was opened, not even before a poll")
  -- An empty string is an error, never "no CA".
  l, err = mgr:http_listen("https://127.0.0.1:0", hello,
                           { tls = { cert = SRV_CERT, key = SRV_KEY, ca = "" } })
  T.eq(l, nil, "empty tls.ca")
  T.match(err, "tls%.ca is empty")
  ok, err = mgr:fetch("https://localhost:1/", { tls = { ca = "" } })
  T.eq(ok, nil, "empty client tls.ca")
  T.match(err, "tls%.ca is empty")
  T.eq(mgr:connection_count(), 0, "nothing left open")
  mgr:close()
end)

T.test("a listen that failed for a missing file has not taken the port", function()
  local mgr = assert(mongoose.new_manager())
  -- Find a free port, then fail on it and take it at once, with no poll between.
  local probe = assert(mgr:http_listen("http://127.0.0.1:0", hello))
  local port = probe:port()
  probe:close()
  local url = "https://127.0.0.1:" .. port
  local l, err = mgr:http_listen(url, hello, { tls = { cert = pki .. "/nope.pem", key = SRV_KEY } })
  T.eq(l, nil)
  T.match(err, "nope%.pem")
  l = assert(mgr:http_listen(url, hello, { tls = SERVER_TLS }))
  T.eq(l:port(), port)
  local body = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/again")
  T.eq(body, "secure /again")
  mgr:close()
end)

T.test("a wrong-typed tls option raises at the caller and leaves nothing open", function()
  local mgr = assert(mongoose.new_manager())
  T.raises("tls%.cert must be", function()
    mgr:http_listen("https://127.0.0.1:0", hello, { tls = { cert = 42, key = SRV_KEY } })
  end)
  T.raises("tls must be a table", function()
    mgr:tcp_connect("tls://127.0.0.1:1", { tls = "yes" })
  end)
  -- Reported where the program called the API, like the other argument errors.
  local _, err = pcall(mgr.http_listen, mgr, "https://127.0.0.1:0", hello,
                       { tls = { cert = 42, key = SRV_KEY } })
  T.ok(not tostring(err):find("lua/mongoose/", 1, true), "error position: " .. tostring(err))
  for _ = 1, 5 do
    mgr:poll(1)
  end
  T.eq(mgr:connection_count(), 0, "no listener or connection left open")
  mgr:close()
end)

T.test("a key that does not match the certificate: handshakes fail, nothing else", function()
  local mgr = assert(mongoose.new_manager())
  -- As documented (docs/tls.md): the pair is checked at each handshake,
  -- not by listen.
  local l = assert(mgr:http_listen("https://127.0.0.1:0", hello,
                                   { tls = { cert = SRV_CERT, key = file("other.key") } }))
  local _, rc = curl(mgr, "--cacert " .. T.q(CA) .. " https://localhost:" .. l:port() .. "/")
  T.ok(rc ~= 0, "curl fails against a mismatched key")
  -- The manager is fine: another listener serves.
  local mgr2, _, port = https_server()
  local body = curl(mgr2, "--cacert " .. T.q(CA) .. " https://localhost:" .. port .. "/fine")
  T.eq(body, "secure /fine")
  mgr2:close()
  mgr:close()
end)

T.test("plain http:// and ws:// URLs ignore opts.tls", function()
  local mgr = assert(mongoose.new_manager())
  local l = assert(mgr:http_listen("http://127.0.0.1:0", hello, { tls = SERVER_TLS }))
  local body, rc = curl(mgr, "http://127.0.0.1:" .. l:port() .. "/plain")
  T.eq(rc, 0)
  T.eq(body, "secure /plain")
  mgr:close()
end)

T.run()
