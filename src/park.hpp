// Parked connections: taken out of Mongoose's connection list and epoll set
// and kept in an epoll set of the glue's own, with the interest the glue
// chooses, so that Mongoose's poll loop (which visits every listed
// connection twice per poll) neither spends time on them nor wakes for them.
// A poll's cost then follows the connections with I/O to do, not all of
// them.
//
// An idle connection (nothing buffered either way, nothing pending, quiet
// for kIdleMs) is parked watching for input: an idle keep-alive connection
// or WebSocket then costs nothing per poll, and its receive and send
// buffers (16 KiB each) are given back (src/alloc.cpp returns their pages).
//
// A connection whose reading is held (paused by Lua, or its own output over
// MAX_SEND_QUEUE) is parked: Mongoose re-arms EPOLLIN for every connection
// with output queued, so a held socket that stays readable would wake every
// poll at once. Parked, it waits for EPOLLOUT only (when it has output), or
// for nothing. The glue's epoll set is itself registered in Mongoose's, with
// a sentinel connection that is never in the list, so a parked socket that
// becomes ready still wakes a poll (and a luv loop watching Mongoose's fd).
//
// Any operation on a parked connection through the C ABI first brings it
// back (Manager::find), timeouts of parked connections come from a heap of
// deadlines, and everything parked is relinked before mg_mgr_free.
#pragma once

#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "mongoose.h"
#include "nested_epoll.hpp"
#include "noncopyable.hpp"

namespace mgffi {

class Manager;
struct ConnState;

class Parking : NonCopyable {
 public:
  Parking() = default;

  // Creates the glue's epoll set inside mgr's. False where there is no
  // epoll (connections are then never parked).
  bool init(mg_mgr *mgr);
  bool enabled() const { return epoll_.enabled(); }
  std::size_t count() const { return count_; }

  // Whether c should leave Mongoose's loop now (at time now).
  static bool wanted(const mg_connection *c, const ConnState *st, std::uint64_t now);
  static bool idle(const mg_connection *c, const ConnState *st, std::uint64_t now);
  static constexpr std::uint64_t kIdleMs = 250;
  // After mg_mgr_poll: parks every listed connection that wants it (one
  // walk of the list, only when something may want it).
  void settle(Manager &m, std::uint64_t now);
  void may_want() { settle_needed_ = true; }
  // Brings c back into Mongoose's list and epoll set.
  void unpark(mg_connection *c, ConnState *st);
  // Unparks connections whose socket is ready (when the sentinel fired)
  // or whose deadline has come. Returns how many.
  std::size_t wake(Manager &m, std::uint64_t now, bool check_io);
  // The sentinel fired in the last mg_mgr_poll (and is reset).
  bool io_ready() { return epoll_.fired(); }
  // The earliest deadline of a parked connection (UINT64_MAX: none).
  std::uint64_t next_deadline() const;
  // Puts every parked connection back in Mongoose's list (before
  // mg_mgr_free, which closes what is listed).
  void relink_all(Manager &m);

 private:
  void park(mg_connection *c, ConnState *st, mg_connection **link, std::uint64_t deadline,
            bool idle);
  mg_mgr *mgr_ = nullptr;
  NestedEpoll epoll_;  // what parked connections wait for
  std::size_t count_ = 0;
  bool settle_needed_ = false;
  using Deadline = std::pair<std::uint64_t, std::uint64_t>;  // (ms, connection id)
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
};

}  // namespace mgffi
