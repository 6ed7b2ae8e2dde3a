// The event path allocates nothing per event in steady state: after a
// warm-up, this counts every malloc/calloc/realloc made while the manager
// polls, hands out its events and sends replies (keep-alive HTTP requests,
// static files with the head and with sendfile, WebSocket echoes, raw TCP
// reads), and fails if there is any.
//
// malloc is interposed for the whole process (the library included) and
// forwards to glibc's __libc_* entry points; only calls made between
// count_on() and count_off() are counted, so the client side of the test
// (plain sockets and std::string buffers) is left out. Not built with the
// sanitizers, which interpose malloc themselves.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "abi_check.hpp"
#include "mongoose_ffi.h"

extern "C" {
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

namespace {
bool g_counting = false;
long g_allocations = 0;
}  // namespace

// Called for each counted allocation: a place for a debugger's breakpoint
// (gdb: break alloc_steady_state_counted) to see where it came from.
__attribute__((noinline)) void alloc_steady_state_counted() {
  if (!g_counting) return;
  g_allocations++;
  asm volatile("");
}

void *malloc(size_t size) {
  alloc_steady_state_counted();
  return __libc_malloc(size);
}
void *calloc(size_t n, size_t size) {
  alloc_steady_state_counted();
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size) {
  alloc_steady_state_counted();
  return __libc_realloc(p, size);
}
}

namespace {

using abi_check::connect_to;
using abi_check::port_of;

void count_on() {
  g_counting = true;
}
void count_off() {
  g_counting = false;
}

std::string g_root;  // the directory static requests are served from

// The Lua layer's defaults: index.html and .br/.gz variants looked for.
mgffi_serve_opts static_opts() {
  mgffi_serve_opts o{};
  o.index = {"index.html", 10};
  o.precompressed = {"br,gzip", 7};
  return o;
}

// One poll with counting on, and the server's side of its events: every
// view read, requests answered, WebSocket messages and TCP reads echoed.
// Returns the number of events.
int serve_once(mgffi_manager *m) {
  static const char kHeaders[] = "Content-Type: text/plain\r\n";
  count_on();
  int n = mgffi_poll(m, 1);
  const mgffi_event *evs = mgffi_events(m);
  for (int i = 0; i < n; i++) {
    const mgffi_event &e = evs[i];
    switch (e.type) {
      case MGFFI_EV_HTTP_MSG:
        if (e.http->uri.len == 3 && std::memcmp(e.http->uri.ptr, "/ws", 3) == 0) {
          mgffi_ws_upgrade(m, e.conn_id, nullptr, 0);
        } else if (e.http->uri.len > 2 && std::memcmp(e.http->uri.ptr, "/f", 2) == 0) {
          const mgffi_serve_opts o = static_opts();
          mgffi_http_serve_dir(m, e.conn_id, g_root.data(), g_root.size(), &o, nullptr);
        } else {
          mgffi_http_reply(m, e.conn_id, 200, kHeaders, sizeof(kHeaders) - 1, e.http->body.ptr,
                           e.http->body.len);
        }
        break;
      case MGFFI_EV_WS_MSG: mgffi_ws_send(m, e.conn_id, e.data.ptr, e.data.len, 2); break;
      case MGFFI_EV_READ:
        if (e.data.len > 0) mgffi_send(m, e.conn_id, e.data.ptr, e.data.len);
        break;
      default: break;
    }
  }
  count_off();
  return n;
}

// Sends data on fd and serves until `want` bytes came back.
void exchange(mgffi_manager *m, int fd, const std::string &data, std::size_t want) {
  CHECK(send(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()));
  std::size_t got = 0;
  char buf[8192];
  for (int polls = 0; got < want; polls++) {
    CHECK(polls < 2000);
    serve_once(m);
    ssize_t r;
    while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) got += static_cast<std::size_t>(r);
  }
  CHECK(got == want);
}

std::string http_request(const std::string &body) {
  return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::size_t http_response_size(const std::string &body) {
  return std::string("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ").size() +
         std::to_string(body.size()).size() + 4 + body.size();
}

// The size of the whole reply to GET path (a static file), read once.
std::size_t static_response_size(mgffi_manager *m, int fd, const std::string &path) {
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string got;
  std::size_t want = 0;
  for (int polls = 0; want == 0 || got.size() < want; polls++) {
    CHECK(polls < 2000);
    serve_once(m);
    char buf[65536];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      got.append(buf, static_cast<std::size_t>(r));
    }
    const std::size_t end = got.find("\r\n\r\n");
    const std::size_t cl = got.find("Content-Length: ");
    if (want == 0 && end != std::string::npos && cl != std::string::npos) {
      want = end + 4 + std::strtoul(got.c_str() + cl + 16, nullptr, 10);
    }
  }
  CHECK(got.compare(0, 12, "HTTP/1.1 200") == 0);
  return want;
}

void write_file(const std::string &path, std::size_t size) {
  FILE *f = std::fopen(path.c_str(), "wb");
  CHECK(f != nullptr);
  const std::string data(size, 'f');
  CHECK(std::fwrite(data.data(), 1, size, f) == size);
  std::fclose(f);
}

// A client WebSocket frame (masked with a zero key) and the size of the
// server's unmasked binary echo of it.
std::string ws_frame(const std::string &payload) {
  std::string f;
  f += static_cast<char>(0x82);
  f += static_cast<char>(0x80 | 126);
  f += static_cast<char>(payload.size() >> 8);
  f += static_cast<char>(payload.size() & 0xff);
  f += std::string(4, '\0');
  return f + payload;
}

}  // namespace

int main() {
  mgffi_log_set_level(0);
  mgffi_manager *m = mgffi_manager_new();
  CHECK(m != nullptr);
  char tmpl[] = "/tmp/mgffi-alloc.XXXXXX";
  CHECK(mkdtemp(tmpl) != nullptr);
  g_root = tmpl;
  write_file(g_root + "/f1k.txt", 1024);      // sent with the head
  write_file(g_root + "/f200k.bin", 200000);  // sent with sendfile
  // The cache is not checked again during the test (that opens the file).
  CHECK(mgffi_set_file_cache(m, 16, 3600000, 3600000) == MGFFI_OK);
  std::uint64_t http_id = 0, raw_id = 0;
  CHECK(abi_check::listen_url(m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &http_id) == MGFFI_OK);
  CHECK(abi_check::listen_url(m, "tcp://127.0.0.1:0", MGFFI_PROTO_RAW, &raw_id) == MGFFI_OK);

  const int http_fd = connect_to(port_of(m, http_id));
  const int ws_fd = connect_to(port_of(m, http_id));
  const int raw_fd = connect_to(port_of(m, raw_id));
  const int static_fd = connect_to(port_of(m, http_id));
  const std::size_t small_file = static_response_size(m, static_fd, "/f1k.txt");
  const std::size_t big_file = static_response_size(m, static_fd, "/f200k.bin");
  const std::string get_small = "GET /f1k.txt HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string get_big = "GET /f200k.bin HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string small(100, 's'), large(20000, 'l'), frame_payload(1000, 'w');
  std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  CHECK(send(ws_fd, upgrade.data(), upgrade.size(), 0) == static_cast<ssize_t>(upgrade.size()));
  std::string response;
  for (int polls = 0; response.find("\r\n\r\n") == std::string::npos; polls++) {
    CHECK(polls < 2000);
    serve_once(m);
    char buf[1024];
    ssize_t r = recv(ws_fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) response.append(buf, static_cast<std::size_t>(r));
  }
  CHECK(response.compare(0, 12, "HTTP/1.1 101") == 0);

  // Warm-up: buffers, queues and recycled states reach their sizes.
  auto round = [&] {
    exchange(m, http_fd, http_request(small), http_response_size(small));
    exchange(m, http_fd, http_request(large), http_response_size(large));
    exchange(m, ws_fd, ws_frame(frame_payload), 4 + frame_payload.size());
    exchange(m, raw_fd, large, large.size());
    exchange(m, static_fd, get_small, small_file);
    exchange(m, static_fd, get_big, big_file);
  };
  for (int i = 0; i < 50; i++) round();
  g_allocations = 0;
  const int kRounds = 500;
  for (int i = 0; i < kRounds; i++) round();
  std::printf(
      "alloc_steady_state: %ld allocations in %d rounds (%d HTTP requests, %d static files, "
      "%d WebSocket echoes, %d TCP echoes)\n",
      g_allocations, kRounds, 2 * kRounds, 2 * kRounds, kRounds, kRounds);
  close(http_fd);
  close(ws_fd);
  close(raw_fd);
  close(static_fd);
  mgffi_manager_free(m);
  CHECK(std::system(("rm -rf '" + g_root + "'").c_str()) == 0);
  return g_allocations == 0 ? 0 : 1;
}
