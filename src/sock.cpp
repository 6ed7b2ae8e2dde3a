// Bytes in and out: the send queue (its growth, cap and timer), raw TCP and
// UDP reads, datagrams, half-close, holding a connection's reads, and
// writing queued output at the start of the next poll.
#include <cerrno>
#include <cstring>
#include <new>

#include "manager.hpp"
#include "platform.hpp"

namespace mgffi {

namespace {

constexpr std::size_t kMaxDatagram = 65536;    // above any UDP payload
constexpr std::size_t kKeptSendBytes = 65536;  // a drained send buffer kept for reuse

// A socket address as Mongoose keeps it (bytes and port in network order).
void from_sockaddr(const sockaddr_storage &sa, mg_addr *out) {
  if (sa.ss_family == AF_INET6) {
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&sa);
    std::memcpy(out->addr.ip, &sin6->sin6_addr, 16);
    out->port = sin6->sin6_port;
    out->is_ip6 = true;
  } else if (sa.ss_family == AF_INET) {
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&sa);
    std::memset(out->addr.ip, 0, sizeof(out->addr.ip));
    std::memcpy(out->addr.ip, &sin->sin_addr, 4);
    out->port = sin->sin_port;
    out->is_ip6 = false;
  }
}

// One datagram to c->rem, sent at once. Not mg_send: when the kernel
// refuses a datagram (too large, unreachable), Mongoose marks the whole
// connection closing, and a udp:// listener would stop serving everyone
// because of one bad send. Returns false with sock_errno() set.
bool send_datagram(mg_connection *c, const void *buf, std::size_t len) {
  sockaddr_storage to{};
  socklen_t to_len;
  if (c->rem.is_ip6) {
    auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&to);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, c->rem.addr.ip, 16);
    sin6->sin6_port = c->rem.port;
    sin6->sin6_scope_id = c->rem.scope_id;
    to_len = sizeof(*sin6);
  } else {
    auto *sin = reinterpret_cast<sockaddr_in *>(&to);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, c->rem.addr.ip, 4);
    sin->sin_port = c->rem.port;
    to_len = sizeof(*sin);
  }
  if (sendto(sock_of(c), static_cast<const char *>(buf), static_cast<io_len_t>(len), 0,
             reinterpret_cast<sockaddr *>(&to), to_len) < 0) {
    return false;
  }
  if (c->loc.port == 0) {  // a client's port is chosen by its first send
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (getsockname(sock_of(c), reinterpret_cast<sockaddr *>(&local), &local_len) == 0) {
      from_sockaddr(local, &c->loc);
    }
  }
  return true;
}

}  // namespace

bool send_bytes(mg_connection *c, const void *buf, std::size_t len) {
  if (len == 0) return true;
  if (c->is_udp) return send_datagram(c, buf, len);
  ConnState *st = Manager::state_of(c);
  // The send timeout counts from when output starts waiting.
  if (c->send.len == 0 && st != nullptr) st->last_write_ms = mg_millis();
  const std::size_t need = c->send.len + len;
  if (need > c->send.size) {
    // Geometric growth: many sends queued at once cost O(total), not
    // O(total^2) copying.
    std::size_t target = need > 2 * c->send.size ? need : 2 * c->send.size;
    target = (target + MG_IO_SIZE - 1) / MG_IO_SIZE * MG_IO_SIZE;
    if (!mg_iobuf_resize(&c->send, target)) return false;
  }
  std::memcpy(c->send.buf + c->send.len, buf, len);
  const bool was_empty = c->send.len == 0;
  c->send.len = need;
  auto *m = static_cast<Manager *>(c->mgr->userdata);
  if (was_empty && st != nullptr && m != nullptr) m->queue_flush(c, st);
  if (st != nullptr && (st->hold & kHoldSendQueue) == 0) {
    const std::uint64_t cap = st->limit(MGFFI_LIMIT_MAX_SEND_QUEUE);
    // Over the cap, the connection is not read until half of it has gone
    // out: an echo to a peer that does not read cannot grow.
    if (cap != 0 && c->send.len >= cap) {
      m->set_hold(c, st, kHoldSendQueue, true);
    }
  }
  return true;
}

// Writes what c's send buffer holds now (plain TCP), as Mongoose's
// write_conn would at its next poll; saves that poll's epoll changes. With
// more, the kernel may hold a partial segment for the file that follows.
// True when the buffer is empty.
bool Manager::flush_now(mg_connection *c, ConnState *st, bool more) {
  if (c->send.len == 0) return true;
  if (c->is_tls || c->is_tls_hs || c->is_closing || c->is_connecting || c->is_resolving ||
      c->is_listening || c->is_udp || c->fd == nullptr) {
    return false;
  }
  std::size_t total = 0;
  while (c->send.len > 0) {
    const auto n =
        ::send(sock_of(c), reinterpret_cast<const char *>(c->send.buf),
               static_cast<io_len_t>(c->send.len), kSendFlags | (more ? kSendMoreFlag : 0));
    const int err = n < 0 ? sock_errno() : 0;
    if (n > 0) {
      mg_iobuf_del(&c->send, 0, static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
    } else if (n < 0 && sock_interrupted(err)) {
      continue;
    } else if (n < 0 && sock_would_block(err)) {
      break;  // Mongoose sends the rest when the socket has room
    } else {
      c->is_closing = 1;  // as Mongoose does when a write fails
      return false;
    }
  }
  if (total == 0) return false;
  // Mongoose armed EPOLLOUT for bytes that are gone now: it would report a
  // writable socket at every poll.
  if (c->send.len == 0 && st->out_armed && !st->parked) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLERR | EPOLLHUP;
    ev.data.ptr = c;
    epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_MOD, fd_of(c), &ev);
  }
  on_write(c, st, static_cast<long>(total));
  if (wants(st, MGFFI_EV_WRITE)) {  // as Mongoose's MG_EV_WRITE would report it
    mgffi_event *e = record(c, st, MGFFI_EV_WRITE);
    if (e != nullptr) e->value = static_cast<std::int64_t>(total);
  }
  return c->send.len == 0;
}

void Manager::queue_flush(mg_connection *c, ConnState *st) {
  if (st->flush_queued || c->is_tls || c->is_udp) return;
  try {
    to_flush_.push_back(c->id);
    st->flush_queued = true;
  } catch (const std::bad_alloc &) {
    // Mongoose writes it at its next poll.
  }
}

bool Manager::flush_queued() {
  bool hurry = false;
  for (std::uint64_t id : to_flush_) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    mg_connection *c = it->second.first;
    ConnState *st = it->second.second.get();
    st->flush_queued = false;
    if (st->parked || st->recorded_gen == queue_gen_ || !flush_now(c, st, false)) continue;
    // Mongoose closes a draining connection whose output is out, and the
    // glue half-closes one with shutdown_pending, at the next poll: it must
    // not sleep first (nothing is left to wake it).
    if (c->is_draining || st->shutdown_pending) hurry = true;
  }
  to_flush_.clear();
  return hurry;
}

void Manager::set_hold(mg_connection *c, ConnState *st, std::uint8_t reason, bool on) {
  const std::uint8_t before = st->hold;
  st->hold =
      on ? static_cast<std::uint8_t>(before | reason) : static_cast<std::uint8_t>(before & ~reason);
  c->is_full = st->hold != 0 ? 1 : 0;
  if ((st->hold & ~kHoldThrottle) != 0) parking_.may_want();
  if (before != 0 && st->hold == 0) {
    parking_.unpark(c, st);
    // Input buffered while held (a pipelined request) is parsed now.
    if (c->recv.len > 0 && c->is_accepted && st->protocol == MGFFI_PROTO_HTTP) {
      mark_input_pending(st);
    }
  }
}

int Manager::check_send_room(mg_connection *c, ConnState *st) {
  const std::uint64_t cap = st->limit(MGFFI_LIMIT_MAX_SEND_QUEUE);
  if (cap != 0 && !c->is_udp && c->send.len >= cap) {
    return fail(MGFFI_ERR_FULL, "send queue full (" + std::to_string(c->send.len) +
                                    " bytes queued, max_send_queue " + std::to_string(cap) + ")");
  }
  return MGFFI_OK;
}

int Manager::send(mg_connection *c, const void *buf, std::size_t len) {
  if (len == 0) return MGFFI_OK;
  // Bytes queued on a TCP listener would never leave, and would keep
  // poll_hint at "poll now" for good.
  if (c->is_listening && !c->is_udp) return fail(MGFFI_ERR_STATE, "cannot send on a listener");
  int rc = check_send_room(c, state_of(c));
  if (rc != MGFFI_OK) return rc;
  if (!send_bytes(c, buf, len)) {
    // UDP sends at once: the kernel said no (too large, unreachable).
    if (c->is_udp) return datagram_failed();
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  return MGFFI_OK;
}

int Manager::close(mg_connection *c, bool immediately) {
  if (immediately) {
    c->is_closing = 1;
    if (c->is_listening) release_listening_socket(c);
  } else {
    c->is_draining = 1;
  }
  return MGFFI_OK;
}

int Manager::pause_reading(mg_connection *c, bool paused) {
  set_hold(c, state_of(c), kHoldPaused, paused);
  return MGFFI_OK;
}

void Manager::on_write(mg_connection *c, ConnState *st, long n) {
  if (n > 0) st->last_write_ms = poll_now_;  // a peer that reads is not stuck
  if (c->send.len == 0) {
    st->out_armed = false;  // Mongoose dropped EPOLLOUT
    // send_bytes only grows the buffer: one that held a large reply is
    // given back once it is out, so memory follows what is queued.
    if (c->send.size > kKeptSendBytes) mg_iobuf_free(&c->send);
  }
  if ((st->hold & kHoldSendQueue) != 0 &&
      c->send.len <= st->limit(MGFFI_LIMIT_MAX_SEND_QUEUE) / 2) {
    set_hold(c, st, kHoldSendQueue, false);
  }
  if (st->ws && st->ws->pong_pending) ws_flush_pong(c, st);
}

// Raw TCP/UDP: hand the bytes to Lua and consume them, unless this poll has
// queued enough already (then read again next poll).
void Manager::on_raw_read(mg_connection *c, ConnState *st) {
  if (c->recv.len > 0 && back_->bytes() >= max_queue_bytes_ && !c->is_udp) {
    if ((st->hold & kHoldThrottle) == 0) {
      set_hold(c, st, kHoldThrottle, true);
      try {
        throttled_.push_back(c->id);
      } catch (const std::bad_alloc &) {
        set_hold(c, st, kHoldThrottle, false);
      }
    }
    return;
  }
  if (c->recv.len > 0) {
    if (wants(st, MGFFI_EV_READ)) {
      mgffi_event *e = record(c, st, MGFFI_EV_READ);
      if (e != nullptr) {
        e->value = static_cast<std::int64_t>(c->recv.len);
        if (!back_->attach_data(c->recv.buf, c->recv.len)) mg_error(c, "out of memory");
      }
    }
    c->recv.len = 0;
  }
  if (c->is_udp && !c->is_closing) drain_udp(c, st);
}

// Mongoose reads one datagram per poll; a burst would overflow the socket
// buffer. Read what else is waiting now, each datagram its own event.
void Manager::drain_udp(mg_connection *c, ConnState *st) {
  constexpr int kMaxPerPoll = 256;
  if (!udp_scratch_) udp_scratch_.reset(new (std::nothrow) char[kMaxDatagram]);
  if (!udp_scratch_) return;
  const bool wanted = wants(st, MGFFI_EV_READ);
  for (int i = 0; i < kMaxPerPoll && (st->hold & kHoldPaused) == 0; i++) {
    if (!datagram_waiting(sock_of(c))) break;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const auto n = recvfrom(sock_of(c), udp_scratch_.get(), static_cast<io_len_t>(kMaxDatagram),
                            kRecvFlags, reinterpret_cast<sockaddr *>(&from), &from_len);
    if (n < 0) break;
    from_sockaddr(from, &c->rem);
    if (!wanted) continue;
    mgffi_event *e = record(c, st, MGFFI_EV_READ);
    if (e == nullptr) break;
    e->value = n;
    if (!back_->attach_data(udp_scratch_.get(), static_cast<std::size_t>(n))) break;
  }
}

void Manager::try_shutdown(mg_connection *c, ConnState *st) {
  if (c->send.len > 0 || c->fd == nullptr) return;
  st->shutdown_pending = false;
  ::shutdown(sock_of(c), kShutWrite);
}

int Manager::shutdown_write(mg_connection *c) {
  if (c->is_udp || c->is_listening) return fail(MGFFI_ERR_STATE, "not a TCP connection");
  ConnState *st = state_of(c);
  st->shutdown_pending = true;
  try_shutdown(c, st);
  return MGFFI_OK;
}

// A listener closed at once gives its port back now, not at the next poll
// (when Mongoose frees it), so the program can listen there again at once.
// Mongoose skips an invalid socket when it frees the connection.
void Manager::release_listening_socket(mg_connection *c) {
  const sock_t fd = sock_of(c);
  if (fd == static_cast<sock_t>(MG_INVALID_SOCKET)) return;
  if (mgr_.epoll_fd >= 0) epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_DEL, static_cast<int>(fd), nullptr);
  close_socket(fd);
  c->fd = reinterpret_cast<void *>(static_cast<std::size_t>(MG_INVALID_SOCKET));
}

int Manager::udp_send_to(mg_connection *c, const mgffi_addr &to, const void *buf, std::size_t len) {
  if (!c->is_udp) return fail(MGFFI_ERR_STATE, "not a UDP connection");
  mg_addr saved = c->rem;
  std::memcpy(c->rem.addr.ip, to.ip, sizeof(to.ip));
  c->rem.port = mg_htons(to.port);
  c->rem.is_ip6 = to.is_ip6 != 0;
  bool ok = send_bytes(c, buf, len);
  c->rem = saved;
  if (!ok) return datagram_failed();
  return MGFFI_OK;
}

int Manager::datagram_failed() {
  return fail(MGFFI_ERR_STATE, "datagram not sent: " + sock_error_text(sock_errno()));
}

}  // namespace mgffi
