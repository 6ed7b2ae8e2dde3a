// An epoll set of the glue's own inside Mongoose's: registered in Mongoose's
// epoll set through a sentinel connection that is never in Mongoose's list,
// so a socket ready in it still wakes Mongoose's poll (and a luv loop
// watching Mongoose's fd), and the sentinel's flags say so after the poll.
// Parking (park.cpp) and the static file sender (http_static.cpp) keep one
// each, with interests Mongoose does not manage.
#pragma once

#include <cstdint>

#include "mongoose.h"
#include "noncopyable.hpp"

namespace mgffi {

class NestedEpoll : NonCopyable {
 public:
  NestedEpoll() = default;
  ~NestedEpoll();

  // Creates the set inside mgr's. False where there is no epoll.
  bool init(mg_mgr *mgr);
  bool enabled() const { return fd_ >= 0; }
  // Adds or changes fd's interest (events), with data as its report;
  // known: fd is probably in the set already (tried as a change first).
  bool watch(int fd, std::uint32_t events, std::uint64_t data, bool known = false);
  bool watch_ptr(int fd, std::uint32_t events, void *ptr);
  void unwatch(int fd);
  // The sentinel fired in the last mg_mgr_poll (and is reset).
  bool fired();
  // The reports ready now (no wait): up to max, into data and events.
  int ready(std::uint64_t *data, std::uint32_t *events, int max);

 private:
  int fd_ = -1;
  mg_connection sentinel_{};  // stands for fd_ in Mongoose's epoll set
};

}  // namespace mgffi
