#include "limits.hpp"

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

#include "mongoose.h"

namespace mgffi {

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kMaxBytes = 1ull << 53;  // what a Lua number holds exactly
constexpr std::uint64_t kMaxMs = 0xffffffffu;
constexpr std::uint64_t kFdReserve = 64;  // descriptors kept for files, DNS, listeners

// The defaults: HTTP listeners answer slow or idle clients; raw TCP/UDP
// connections have no idle or request timeouts unless asked.
const LimitInfo kLimits[MGFFI_LIMIT_COUNT] = {
    {"max_connections", 0, 0, 0xffffffffu},  // default computed from the fd limit
    {"max_connections_per_ip", 0, 0, 0xffffffffu},
    {"idle_timeout", 60000, 0, kMaxMs},
    {"request_timeout", 15000, 0, kMaxMs},
    {"min_body_rate", 1024, 0, kMaxBytes},
    {"send_timeout", 60000, 60000, kMaxMs},
    {"max_header_size", 16384, 16384, MG_MAX_RECV_SIZE / 2},
    {"max_headers", 64, 64, MG_MAX_HTTP_HEADERS},
    {"max_body", MGFFI_DEFAULT_MAX_BODY, MGFFI_DEFAULT_MAX_BODY, kMaxBytes},
    {"stream_threshold", 0, 0, kMaxBytes},
    {"max_send_queue", 4 * kMiB, 4 * kMiB, kMaxBytes},
    {"max_message", MGFFI_DEFAULT_MAX_BODY, MGFFI_DEFAULT_MAX_BODY, kMaxBytes},
    {"ws_idle_timeout", 0, 0, kMaxMs},
    {"message_timeout", 60000, 60000, kMaxMs},
    {"control_rate", 100, 100, 1000000},
    {"fragment_size", 0, 0, kMaxBytes},
};

}  // namespace

const LimitInfo *limit_info(int key) {
  if (key < 0 || key >= MGFFI_LIMIT_COUNT) return nullptr;
  return &kLimits[key];
}

std::uint64_t default_max_connections() {
#if defined(_WIN32)
  return 10000;  // Winsock has no per-process descriptor limit
#else
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 10000;
  const std::uint64_t n = rl.rlim_cur;
  return n > 2 * kFdReserve ? n - kFdReserve : n / 2;
#endif
}

std::shared_ptr<Limits> default_limits(int protocol) {
  auto limits = std::make_shared<Limits>();
  for (int k = 0; k < MGFFI_LIMIT_COUNT; k++) {
    limits->value[k] =
        protocol == MGFFI_PROTO_HTTP ? kLimits[k].http_default : kLimits[k].raw_default;
  }
  limits->value[MGFFI_LIMIT_MAX_CONNECTIONS] = default_max_connections();
  return limits;
}

}  // namespace mgffi
