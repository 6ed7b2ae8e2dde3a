// What the two libFuzzer targets share (fuzz_http_server.cpp and
// fuzz_ws.cpp): reading every view of every event the way Lua does, a
// client socket that survives libFuzzer's timer signal and TIME_WAIT,
// sending while the manager keeps polling, and the corpus replay main()
// of the CMake build (MGFFI_FUZZ_REPLAY).
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "mongoose_ffi.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);

namespace fuzz {

inline volatile std::uint64_t g_sink = 0;  // keeps the reads of the views alive

inline void touch(const mgffi_str &s) {
  std::uint64_t sum = s.len;
  for (std::size_t i = 0; i < s.len; i++) sum += static_cast<unsigned char>(s.ptr[i]);
  g_sink = g_sink + sum;
}

inline void touch_http(const mgffi_http_message *h) {
  if (h == nullptr) return;
  touch(h->method);
  touch(h->uri);
  touch(h->query);
  touch(h->proto);
  touch(h->head);
  touch(h->body);
  g_sink = g_sink + h->content_length + static_cast<std::uint64_t>(h->status);
  const std::uint32_t n = h->header_count;
  if (n > MGFFI_MAX_HEADERS) std::abort();  // the view promises at most this many
  for (std::uint32_t i = 0; i < n; i++) {
    touch(h->headers[i].name);
    touch(h->headers[i].value);
  }
  for (std::uint32_t i = 0; i < h->trailer_count; i++) {
    touch(h->trailers[i].name);
    touch(h->trailers[i].value);
  }
}

// Reads every field of an event.
inline void touch_event(const mgffi_event &e) {
  touch(e.data);
  g_sink = g_sink + static_cast<std::uint64_t>(e.value) + e.flags + e.listener_id + e.remote.port +
           e.remote.ip[0];
  touch_http(e.http);
}

inline int listen_url(mgffi_manager *m, const char *url, int protocol, std::uint64_t *id) {
  return mgffi_listen(m, url, std::strlen(url), protocol, id);
}

inline std::uint16_t port_of(mgffi_manager *m, std::uint64_t id) {
  mgffi_conn_info info;
  if (mgffi_get_conn_info(m, id, &info) != MGFFI_OK) std::abort();
  return info.local.port;
}

inline void drain_socket(int fd, std::string *into = nullptr) {
  char buf[16384];
  for (int i = 0; i < 64; i++) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r <= 0) break;
    if (into != nullptr) into->append(buf, static_cast<std::size_t>(r));
  }
}

// Sends everything (or until the peer is gone), calling poll() whenever the
// socket is full, and reading what comes back.
inline void send_all(int fd, const std::uint8_t *p, std::size_t len,
                     const std::function<void()> &poll) {
  for (int tries = 0; len > 0 && tries < 200; tries++) {
    ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      len -= static_cast<std::size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return;  // the server closed on us
    }
    poll();
    drain_socket(fd);
  }
}

// One input: the variant byte (data[0]) and the payload after it.
struct Input {
  unsigned variant;
  const std::uint8_t *payload;
  std::size_t len;
};

// What both targets do with a connection fd of theirs: send the payload
// (whole, or with the variant's bit 1 cut in two at a point bits 5-7
// choose, three polls between), let the manager work through it (poll
// returns the events of one poll; until three in a row brought nothing
// and no timer is due, 64 at the most, reading what comes back), close fd
// (with a reset when bit 2 is set); then the manager must drop the
// connection: final_poll (at most polls times) until it is back to count
// connections, an abort with what when it is not.
inline void run_connection(mgffi_manager *m, int fd, const Input &in,
                           const std::function<int()> &poll,
                           const std::function<void()> &final_poll, std::size_t count, int polls,
                           const char *what) {
  const std::function<void()> poll_void = [&] { poll(); };
  if ((in.variant & 2) && in.len > 1) {
    const std::size_t cut = in.len * ((in.variant >> 5) + 1) / 9;
    send_all(fd, in.payload, cut, poll_void);
    for (int i = 0; i < 3; i++) poll();
    send_all(fd, in.payload + cut, in.len - cut, poll_void);
  } else {
    send_all(fd, in.payload, in.len, poll_void);
  }
  int quiet = 0;
  for (int i = 0; i < 64 && quiet < 3; i++) {
    const int n = poll();
    drain_socket(fd);
    quiet = n == 0 && mgffi_poll_hint(m) != 0 ? quiet + 1 : 0;
  }
  if (in.variant & 4) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(fd);
  for (int i = 0; i < polls && mgffi_connection_count(m) > count; i++) final_poll();
  if (mgffi_connection_count(m) > count) {
    std::fprintf(stderr, "fuzz: %s\n", what);
    std::abort();
  }
}

// A client socket connected to 127.0.0.1:port. Two harness conditions, not
// findings, can make a connect() fail: libFuzzer's timeout timer interrupts
// it now and then (EINTR), and at some 5000 runs a second the TIME_WAIT
// sockets of one source address would fill the ephemeral port range within
// a minute. So each try binds the next of 250 loopback source addresses, and
// a failed try is dropped and made again on a new socket after poll().
inline int connect_client(std::uint16_t port, const std::function<void()> &poll) {
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
    sa.sin_port = htons(port);
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
    poll();
  }
  std::fprintf(stderr, "fuzz: cannot connect to the server: %s\n", std::strerror(last_errno));
  std::abort();
}

#ifdef MGFFI_FUZZ_REPLAY
inline int replay_file(const std::string &path) {
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

// Replays every file named, or every file in every directory named.
inline int replay_main(int argc, char **argv) {
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

}  // namespace fuzz
