// The limits of a listener or connection (enum mgffi_limit): one table of
// values, shared by a listener and the connections it accepted until one of
// them changes a value (copy on write), so an accepted connection costs no
// copy of it.
#pragma once

#include <cstdint>
#include <memory>

#include "mongoose_ffi.h"

namespace mgffi {

struct LimitInfo {
  const char *name;  // the Lua option name
  std::uint64_t http_default;
  std::uint64_t raw_default;  // TCP/UDP listeners and clients
  std::uint64_t max;
};

// Key's description, or nullptr for an unknown key.
const LimitInfo *limit_info(int key);

struct Limits {
  std::uint64_t value[MGFFI_LIMIT_COUNT];
  std::uint64_t operator[](int key) const { return value[key]; }
};

// A new table with the defaults for protocol (MGFFI_PROTO_*).
std::shared_ptr<Limits> default_limits(int protocol);

// The default of MGFFI_LIMIT_MAX_CONNECTIONS: what the descriptor limit
// leaves after a reserve for files and other sockets.
std::uint64_t default_max_connections();

}  // namespace mgffi
