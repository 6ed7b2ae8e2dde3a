// libFuzzer target: arbitrary bytes from a client to an HTTP server built on
// the glue (C ABI only), with the event queue drained the way the Lua
// layer drains it: every view field of every event is read, every request
// is answered (plain, chunked, WebSocket upgrade), WebSocket messages are
// echoed, streamed bodies are consumed.
//
// Input layout: byte 0 picks the variant, the rest is what the client sends.
//   bit 0: the listener with small limits and body streaming (else defaults)
//   bit 1: send in two writes, split at (bits 5-7 + 1) ninths of the payload
//   bit 2: end with a reset (SO_LINGER 0) instead of a close
//   bits 3-4: how requests are answered (plain, chunked, upgrade, deferred)
//
// Built two ways: by scripts/fuzz.sh with clang -fsanitize=fuzzer,address
// (libFuzzer provides main), and by CMake with MGFFI_FUZZ_REPLAY defined,
// where main() below replays files or directories (the corpus) once each.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mongoose_ffi.h"

namespace {

int listen_url(mgffi_manager *m, const char *url, int protocol, uint64_t *id) {
  return mgffi_listen(m, url, std::strlen(url), protocol, id);
}

}  // namespace

namespace {

struct Server {
  mgffi_manager *m = nullptr;
  std::uint64_t listeners[2] = {0, 0};
  std::uint16_t ports[2] = {0, 0};
};

volatile std::uint64_t g_sink = 0;  // keeps the reads of the views alive

void touch(const mgffi_str &s) {
  std::uint64_t sum = s.len;
  for (std::size_t i = 0; i < s.len; i++) sum += static_cast<unsigned char>(s.ptr[i]);
  g_sink = g_sink + sum;
}

void touch_http(const mgffi_http_message *h) {
  if (h == nullptr) return;
  touch(h->method);
  touch(h->uri);
  touch(h->query);
  touch(h->proto);
  touch(h->head);
  touch(h->body);
  g_sink = g_sink + h->content_length + static_cast<std::uint64_t>(h->status);
  std::uint32_t n = h->header_count;
  if (n > MGFFI_MAX_HEADERS) std::abort();  // the view promises at most this many
  for (std::uint32_t i = 0; i < n; i++) {
    touch(h->headers[i].name);
    touch(h->headers[i].value);
  }
}

std::uint16_t port_of(mgffi_manager *m, std::uint64_t id) {
  mgffi_conn_info info;
  if (mgffi_get_conn_info(m, id, &info) != MGFFI_OK) std::abort();
  return info.local.port;
}

Server &server() {
  static Server s;
  if (s.m != nullptr) return s;
  mgffi_log_set_level(0);
  s.m = mgffi_manager_new();
  if (s.m == nullptr) std::abort();
  if (listen_url(s.m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &s.listeners[0]) != MGFFI_OK ||
      listen_url(s.m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &s.listeners[1]) != MGFFI_OK) {
    std::abort();
  }
  // Listener 1: small limits, streamed bodies, small WebSocket messages.
  const std::pair<int, uint64_t> limits[] = {
      {MGFFI_LIMIT_MAX_BODY, 4096},        {MGFFI_LIMIT_STREAM_THRESHOLD, 1024},
      {MGFFI_LIMIT_MAX_CONNECTIONS, 64},   {MGFFI_LIMIT_REQUEST_TIMEOUT_MS, 2000},
      {MGFFI_LIMIT_MAX_HEADER_SIZE, 2048}, {MGFFI_LIMIT_MAX_HEADERS, 16},
      {MGFFI_LIMIT_WS_MAX_MESSAGE, 1024}};
  for (const auto &l : limits) mgffi_set_limit(s.m, s.listeners[1], l.first, l.second);
  for (std::uint64_t id : s.listeners) {
    mgffi_set_event_mask(s.m, id, 0xffffffffu);
  }
  s.ports[0] = port_of(s.m, s.listeners[0]);
  s.ports[1] = port_of(s.m, s.listeners[1]);
  return s;
}

// Answers, echoes and reads everything in the last poll's events.
void drain_events(mgffi_manager *m, int n, unsigned mode, std::vector<std::uint64_t> *deferred) {
  const mgffi_event *evs = mgffi_events(m);
  static const char kHeaders[] = "Content-Type: text/plain\r\n";
  for (int i = 0; i < n; i++) {
    const mgffi_event &e = evs[i];
    touch(e.data);
    g_sink = g_sink + static_cast<std::uint64_t>(e.value) + e.flags + e.listener_id +
             e.remote.port + e.remote.ip[0];
    touch_http(e.http);
    switch (e.type) {
      case MGFFI_EV_HTTP_MSG:
      case MGFFI_EV_HTTP_HDRS: {
        bool upgrade = e.http != nullptr && e.http->uri.len >= 3 &&
                       std::memcmp(e.http->uri.ptr, "/ws", 3) == 0;
        if (upgrade && (mode == 2 || mode == 0) && e.type == MGFFI_EV_HTTP_MSG) {
          mgffi_ws_upgrade(m, e.conn_id, nullptr, 0);
        } else if (mode == 1) {
          mgffi_http_begin_chunked(m, e.conn_id, 200, kHeaders, sizeof(kHeaders) - 1);
          mgffi_http_write_chunk(m, e.conn_id, "chunk", 5);
          mgffi_http_end_chunked(m, e.conn_id);
        } else if (mode == 3) {
          deferred->push_back(e.conn_id);  // answered after the next poll
        } else {
          mgffi_http_reply(m, e.conn_id, 200, kHeaders, sizeof(kHeaders) - 1, "ok\n", 3);
        }
        break;
      }
      case MGFFI_EV_WS_MSG:
        mgffi_ws_send(m, e.conn_id, e.data.ptr, e.data.len, (e.value & 15) == 2 ? 2 : 1);
        break;
      default: break;
    }
  }
}

void drain_socket(int fd) {
  char buf[16384];
  for (int i = 0; i < 64; i++) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r <= 0) break;
  }
}

// One poll plus the Lua-like handling of its events.
int poll_once(Server &s, unsigned mode, std::vector<std::uint64_t> *deferred, int timeout_ms) {
  std::vector<std::uint64_t> late;
  late.swap(*deferred);
  int n = mgffi_poll(s.m, timeout_ms);
  if (n < 0) std::abort();
  drain_events(s.m, n, mode, deferred);
  // Deferred replies from the previous poll: the request views must still
  // be readable (the glue keeps them until the reply).
  for (std::uint64_t id : late) {
    mgffi_http_reply(s.m, id, 202, nullptr, 0, "late\n", 5);
  }
  return n;
}

void send_all(Server &s, int fd, const std::uint8_t *p, std::size_t len, unsigned mode,
              std::vector<std::uint64_t> *deferred) {
  for (int tries = 0; len > 0 && tries < 200; tries++) {
    ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      len -= static_cast<std::size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return;  // the server closed on us
    }
    poll_once(s, mode, deferred, 0);
    drain_socket(fd);
  }
}

// A client socket connected to listener `which`. Two harness conditions,
// not findings, can make a connect() fail: libFuzzer's timeout timer
// interrupts it now and then (EINTR: the earlier CI aborts), and at some
// 5000 runs a second the TIME_WAIT sockets of one source address would
// fill the ephemeral port range within a minute. So each try binds the
// next of 250 loopback source addresses, and a failed try is dropped and
// made again on a new socket after the server polled.
int connect_client(Server &s, int which, unsigned mode, std::vector<std::uint64_t> *deferred) {
  static unsigned source_seq = 0;
  int last_errno = 0;
  for (int attempt = 0; attempt < 100; attempt++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) std::abort();
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (source_seq++ % 250));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(s.ports[which]);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr *>(&src), sizeof(src)) == 0 &&
        connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) == 0) {
      return fd;
    }
    last_errno = errno;
    static bool told = false;
    if (!told) {
      told = true;  // once: it says which condition it was
      std::fprintf(stderr, "fuzz: connect failed (%s), trying again\n", std::strerror(last_errno));
    }
    close(fd);
    poll_once(s, mode, deferred, 1);
  }
  std::fprintf(stderr, "fuzz: cannot connect to the server: %s\n", std::strerror(last_errno));
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1) return 0;
  Server &s = server();
  const unsigned variant = data[0];
  const std::uint8_t *payload = data + 1;
  const std::size_t len = size - 1;
  const int which = variant & 1;
  const unsigned mode = (variant >> 3) & 3;
  std::vector<std::uint64_t> deferred;

  int fd = connect_client(s, which, mode, &deferred);

  if ((variant & 2) && len > 1) {
    std::size_t cut = len * ((variant >> 5) + 1) / 9;
    send_all(s, fd, payload, cut, mode, &deferred);
    for (int i = 0; i < 3; i++) poll_once(s, mode, &deferred, 0);
    send_all(s, fd, payload + cut, len - cut, mode, &deferred);
  } else {
    send_all(s, fd, payload, len, mode, &deferred);
  }
  // Let the server work through it: a bounded number of polls.
  int quiet = 0;
  for (int i = 0; i < 64 && quiet < 3; i++) {
    int n = poll_once(s, mode, &deferred, 0);
    drain_socket(fd);
    quiet = n == 0 && mgffi_poll_hint(s.m) != 0 ? quiet + 1 : 0;
  }
  if (variant & 4) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(fd);
  // The server must notice and drop the connection: back to the listeners.
  for (int i = 0; i < 200 && mgffi_connection_count(s.m) > 2; i++) {
    poll_once(s, mode, &deferred, 1);
  }
  if (mgffi_connection_count(s.m) > 2) {
    std::fprintf(stderr, "fuzz: a connection outlived its client\n");
    std::abort();
  }
  return 0;
}

#ifdef MGFFI_FUZZ_REPLAY
namespace {

int replay_file(const std::string &path) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::perror(path.c_str());
    return 1;
  }
  std::vector<std::uint8_t> buf;
  std::uint8_t chunk[4096];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) buf.insert(buf.end(), chunk, chunk + n);
  std::fclose(f);
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return 0;
}

}  // namespace

// Replays every file named, or every file in every directory named.
int main(int argc, char **argv) {
  int files = 0, errors = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      std::perror(argv[i]);
      return 1;
    }
    if (S_ISDIR(st.st_mode)) {
      DIR *d = opendir(argv[i]);
      if (d == nullptr) return 1;
      std::vector<std::string> names;
      while (dirent *ent = readdir(d)) {
        if (ent->d_name[0] != '.') names.push_back(std::string(argv[i]) + "/" + ent->d_name);
      }
      closedir(d);
      for (const std::string &name : names) {
        errors += replay_file(name);
        files++;
      }
    } else {
      errors += replay_file(argv[i]);
      files++;
    }
  }
  std::printf("replayed %d inputs\n", files);
  return errors == 0 && files > 0 ? 0 : 1;
}
#endif
