// What every file of the C ABI shares: the manager behind the opaque
// handle, and the wrapper that looks up a connection and turns every C++
// exception into a status code (nothing else crosses into the FFI).
#pragma once

#include <new>
#include <string>

#include "manager.hpp"

struct mgffi_manager {
  mgffi::Manager impl;
};

namespace mgffi {

// Calls fn(manager, connection) for a live connection id, or returns the
// status to give back.
template <typename Fn>
int with_conn(mgffi_manager *m, std::uint64_t id, Fn &&fn) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  try {
    mg_connection *c = m->impl.find(id);
    if (c == nullptr) return MGFFI_ERR_NO_CONN;
    return fn(m->impl, c);
  } catch (const std::bad_alloc &) {
    return m->impl.fail(MGFFI_ERR_NOMEM, "out of memory");
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error");
  }
}

// Calls fn() guarding against exceptions, for functions without a connection.
template <typename Fn>
int guarded(mgffi_manager *m, const char *what, Fn &&fn) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  try {
    return fn();
  } catch (const std::bad_alloc &) {
    return m->impl.fail(MGFFI_ERR_NOMEM, "out of memory");
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, std::string("unexpected internal error in ") + what);
  }
}

// MGFFI_ERR_ARG with a message (m may be NULL).
inline int bad_arg(mgffi_manager *m, const char *message) {
  return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, message);
}

// A NULL pointer with a non-zero length.
inline bool bad_buf(const void *p, std::size_t len) {
  return p == nullptr && len > 0;
}

}  // namespace mgffi
