// A full start, serve, stop cycle through the C ABI, for the leak check
// (CTest label "leak": run under valgrind --leak-check=full, or with
// LeakSanitizer in the sanitizer build). Serves HTTP (plain, chunked,
// rejected, streamed), static files (whole, and one left half-sent), a
// WebSocket echo, raw TCP and UDP, and an HTTP client, leaves some
// connections open at the end, and frees the manager.
// Run twice so that recycled connection states are covered too.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "abi_check.hpp"
#include "mongoose_ffi.h"

namespace {

using abi_check::connect_to;
using abi_check::port_of;

std::string g_file;  // a file served with serve_file (sendfile: over 16 KiB)

// Answers every request and echoes every message and every TCP/UDP read.
void handle(mgffi_manager *m, int n) {
  const mgffi_event *evs = mgffi_events(m);
  for (int i = 0; i < n; i++) {
    const mgffi_event &e = evs[i];
    if (e.flags & MGFFI_F_CLIENT) continue;
    switch (e.type) {
      case MGFFI_EV_HTTP_MSG:
      case MGFFI_EV_HTTP_HDRS:
        if (e.http->uri.len == 3 && std::memcmp(e.http->uri.ptr, "/ws", 3) == 0) {
          mgffi_ws_upgrade(m, e.conn_id, nullptr, 0);
        } else if (e.http->uri.len == 5 && std::memcmp(e.http->uri.ptr, "/file", 5) == 0) {
          mgffi_http_serve_file(m, e.conn_id, g_file.data(), g_file.size(), nullptr, nullptr);
        } else if (e.http->uri.len == 8 && std::memcmp(e.http->uri.ptr, "/chunked", 8) == 0) {
          mgffi_http_begin_chunked(m, e.conn_id, 200, nullptr, 0);
          mgffi_http_write_chunk(m, e.conn_id, "abc", 3);
          mgffi_http_end_chunked(m, e.conn_id);
        } else {
          mgffi_http_reply(m, e.conn_id, 200, "X-A: b\r\n", 8, "hello\n", 6);
        }
        break;
      case MGFFI_EV_WS_MSG: mgffi_ws_send(m, e.conn_id, e.data.ptr, e.data.len, 1); break;
      case MGFFI_EV_READ:
        if (e.flags & MGFFI_F_UDP) {
          mgffi_udp_send_to(m, e.conn_id, &e.remote, e.data.ptr, e.data.len);
        } else {
          mgffi_send(m, e.conn_id, e.data.ptr, e.data.len);
        }
        break;
      default: break;
    }
  }
}

// Polls until what the client socket received ends with `until` (or the
// peer closes, or 3 s pass).
std::string exchange(mgffi_manager *m, int fd, const std::string &out, const std::string &until) {
  CHECK(send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));
  std::string in;
  auto done = [&] {
    return in.size() >= until.size() &&
           in.compare(in.size() - until.size(), until.size(), until) == 0;
  };
  for (int i = 0; i < 600 && !done(); i++) {
    handle(m, mgffi_poll(m, 5));
    char buf[8192];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) in.append(buf, static_cast<std::size_t>(r));
    if (r == 0) break;
  }
  return in;
}

void cycle() {
  mgffi_manager *m = mgffi_manager_new();
  CHECK(m != nullptr);
  std::uint64_t http = 0, streamed = 0, tcp = 0, udp = 0;
  CHECK(abi_check::listen_url(m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &http) == MGFFI_OK);
  CHECK(abi_check::listen_url(m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &streamed) == MGFFI_OK);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_MAX_BODY, 1000);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_STREAM_THRESHOLD, 100);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_MAX_CONNECTIONS, 10);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_IDLE_TIMEOUT_MS, 5000);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_REQUEST_TIMEOUT_MS, 5000);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_MAX_HEADER_SIZE, 1024);
  abi_check::set_limit(m, streamed, MGFFI_LIMIT_MAX_HEADERS, 16);
  CHECK(abi_check::listen_url(m, "tcp://127.0.0.1:0", MGFFI_PROTO_RAW, &tcp) == MGFFI_OK);
  CHECK(abi_check::listen_url(m, "udp://127.0.0.1:0", MGFFI_PROTO_RAW, &udp) == MGFFI_OK);

  // HTTP: keep-alive requests, chunked, a 400, a 431 and a streamed body.
  int a = connect_to(port_of(m, http));
  std::string r = exchange(m, a, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n", "hello\n");
  CHECK(r.find("hello") != std::string::npos);
  r = exchange(m, a, "GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n", "0\r\n\r\n");
  CHECK(r.find("abc") != std::string::npos);
  int b = connect_to(port_of(m, http));
  r = exchange(m, b, "NOT HTTP\r\n\r\n", "Bad Request\n");
  CHECK(r.find(" 400 ") != std::string::npos);
  close(b);
  int c = connect_to(port_of(m, streamed));
  r = exchange(
      m, c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + std::string(500, 'u'),
      "hello\n");
  CHECK(r.find("hello") != std::string::npos);
  r = exchange(m, c, "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'h') + "\r\n\r\n",
               "Request Header Fields Too Large\n");
  CHECK(r.find(" 431 ") != std::string::npos);
  close(c);

  // A static file sent whole, then one the client does not read: the
  // manager is freed with it half-sent.
  r = exchange(m, a, "GET /file HTTP/1.1\r\nHost: h\r\n\r\n", "END\n");
  CHECK(r.find(" 200 ") != std::string::npos);
  int f = connect_to(port_of(m, http));
  const int small = 4096;
  setsockopt(f, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const std::string get = "GET /file HTTP/1.1\r\nHost: h\r\n\r\n";
  CHECK(send(f, get.data(), get.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(get.size()));
  for (int i = 0; i < 20; i++) handle(m, mgffi_poll(m, 5));

  // WebSocket: upgrade, one masked message, left open at the end.
  int w = connect_to(port_of(m, http));
  r = exchange(m, w,
               "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               "\r\n\r\n");
  CHECK(r.find(" 101 ") != std::string::npos);
  const char frame[] = {'\x81', '\x82', 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
  r = exchange(m, w, std::string(frame, sizeof(frame)), "hi");
  CHECK(r.size() >= 4 && r.substr(r.size() - 2) == "hi");

  // Raw TCP and UDP echo.
  int t = connect_to(port_of(m, tcp));
  CHECK(exchange(m, t, "ping", "ping") == "ping");
  int u = connect_to(port_of(m, udp), SOCK_DGRAM);
  CHECK(exchange(m, u, "dgram", "dgram") == "dgram");

  // An HTTP client request to our own server, and one to a closed port.
  std::uint64_t client = 0, refused = 0;
  std::string url = "http://127.0.0.1:" + std::to_string(port_of(m, http)) + "/c";
  CHECK(mgffi_connect(m, url.c_str(), url.size(), MGFFI_PROTO_HTTP, &client) == MGFFI_OK);
  CHECK(abi_check::connect_url(m, "http://127.0.0.1:1/", MGFFI_PROTO_HTTP, &refused) == MGFFI_OK);
  std::string req = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  CHECK(mgffi_send(m, client, req.data(), req.size()) == MGFFI_OK);
  bool answered = false;
  for (int i = 0; i < 600 && !answered; i++) {
    int n = mgffi_poll(m, 5);
    handle(m, n);
    const mgffi_event *evs = mgffi_events(m);
    for (int k = 0; k < n; k++) {
      if (evs[k].conn_id == client && evs[k].type == MGFFI_EV_HTTP_MSG) answered = true;
    }
  }
  CHECK(answered);

  // Stop with connections still open (a, w, t, u, the client): the
  // manager frees them.
  mgffi_manager_free(m);
  close(f);
  close(a);
  close(w);
  close(t);
  close(u);
}

}  // namespace

int main() {
  mgffi_log_set_level(0);
  char path[] = "/tmp/mgffi-leak.XXXXXX";
  const int fd = mkstemp(path);
  CHECK(fd >= 0);
  const std::string data = std::string(3 << 20, 'L') + "END\n";  // 3 MiB
  CHECK(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
  g_file = path;
  cycle();
  cycle();
  unlink(path);
  std::puts("leak_cycle: done");
  return 0;
}
