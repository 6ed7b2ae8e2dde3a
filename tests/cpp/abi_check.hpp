// Helpers of the stand-alone C ABI programs (leak_cycle, alloc_steady_state):
// a CHECK that exits, a listener's port, and a connected loopback socket.
// No GoogleTest: these programs run under valgrind or count allocations.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mongoose_ffi.h"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

namespace abi_check {

// mgffi_listen and mgffi_connect with a NUL-terminated URL (or NULL).
inline int listen_url(mgffi_manager *m, const char *url, int protocol, std::uint64_t *id) {
  return mgffi_listen(m, url, url != nullptr ? std::strlen(url) : 0, protocol, id);
}

inline int connect_url(mgffi_manager *m, const char *url, int protocol, std::uint64_t *id) {
  return mgffi_connect(m, url, url != nullptr ? std::strlen(url) : 0, protocol, id);
}

// Sets limit key of connection id, failing the program when it cannot.
inline void set_limit(mgffi_manager *m, std::uint64_t id, int key, std::uint64_t value) {
  if (mgffi_set_limit(m, id, key, value) != MGFFI_OK) {
    std::fprintf(stderr, "set_limit %d: %s\n", key, mgffi_last_error(m));
    std::exit(1);
  }
}

inline std::uint16_t port_of(mgffi_manager *m, std::uint64_t id) {
  mgffi_conn_info info;
  CHECK(mgffi_get_conn_info(m, id, &info) == MGFFI_OK);
  return info.local.port;
}

// A blocking socket connected to 127.0.0.1:port (type SOCK_STREAM or
// SOCK_DGRAM).
inline int connect_to(std::uint16_t port, int type = SOCK_STREAM) {
  int fd = socket(AF_INET, type, 0);
  CHECK(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) == 0);
  return fd;
}

}  // namespace abi_check
