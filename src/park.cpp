#include "park.hpp"

#include <new>

#include "manager.hpp"
#include "platform.hpp"

namespace mgffi {

bool Parking::init(mg_mgr *mgr) {
  mgr_ = mgr;
  return epoll_.init(mgr);
}

bool Parking::wanted(const mg_connection *c, const ConnState *st, std::uint64_t now) {
  if (st->parked || (c->is_listening && !c->is_udp) || c->is_closing || c->is_draining ||
      c->is_resolving || c->is_connecting || c->is_tls_hs || c->is_resp ||
      c->pfn != nullptr ||                           // a protocol handler of Mongoose's needs polls
      st->http.out == HttpRequest::Out::kServing) {  // a file being sent (file_send.cpp)
    return false;
  }
  if (c->fd == reinterpret_cast<void *>(static_cast<std::size_t>(MG_INVALID_SOCKET))) return false;
  // Held for a reason that lasts beyond this poll.
  if ((st->hold & static_cast<std::uint8_t>(~kHoldThrottle)) != 0) return true;
  return idle(c, st, now);
}

// Nothing to do until the peer sends something, Lua calls, or a deadline
// comes: nothing buffered either way (TLS included), nothing owed.
bool Parking::idle(const mg_connection *c, const ConnState *st, std::uint64_t now) {
  if (st->hold != 0 || c->is_udp || c->recv.len > 0 || c->send.len > 0 || c->rtls.len > 0 ||
      st->input_pending || st->shutdown_pending ||
      mg_tls_pending(const_cast<mg_connection *>(c)) > 0) {
    return false;
  }
  if (st->ws && (st->ws->pong_pending || st->ws->closing || !st->ws->open)) return false;
  const std::uint64_t last =
      st->last_read_ms > st->last_write_ms ? st->last_read_ms : st->last_write_ms;
  return now >= last + kIdleMs;
}

void Parking::park(mg_connection *c, ConnState *st, mg_connection **link, std::uint64_t deadline,
                   bool idle) {
  *link = c->next;
  c->next = nullptr;
  epoll_ctl(mgr_->epoll_fd, EPOLL_CTL_DEL, fd_of(c), nullptr);
  st->parked = true;
  st->park_watched = false;
  count_++;
  // Idle: watched for input (or a hang-up), its empty buffers given back.
  // Held: only a socket with output to send needs watching (for room to
  // write); one with nothing to send is not watched at all: even an empty
  // interest set reports a hang-up at every wait.
  const std::uint32_t interest = idle ? EPOLLIN | EPOLLRDHUP : c->send.len > 0 ? EPOLLOUT : 0u;
  if (idle) {
    mg_iobuf_free(&c->recv);
    mg_iobuf_free(&c->send);
    mg_iobuf_free(&c->rtls);
  }
  if (interest != 0) st->park_watched = epoll_.watch_ptr(fd_of(c), interest, c);
  st->park_deadline_ms = deadline;
  if (deadline != UINT64_MAX) deadlines_.emplace(deadline, st->id);
}

void Parking::settle(Manager &m, std::uint64_t now) {
  if (!epoll_.enabled() || !settle_needed_) return;
  settle_needed_ = false;
  mg_connection **link = &mgr_->conns;
  while (*link != nullptr) {
    mg_connection *c = *link;
    ConnState *st = Manager::state_of(c);
    if (st != nullptr && wanted(c, st, now)) {
      park(c, st, link, m.next_deadline(c, st), st->hold == 0);
    } else {
      link = &c->next;
    }
  }
}

void Parking::unpark(mg_connection *c, ConnState *st) {
  if (!st->parked) return;
  if (st->park_watched) epoll_.unwatch(fd_of(c));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | (c->send.len > 0 ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  epoll_ctl(mgr_->epoll_fd, EPOLL_CTL_ADD, fd_of(c), &ev);
  c->next = mgr_->conns;
  mgr_->conns = c;
  st->parked = false;
  st->park_watched = false;
  st->park_deadline_ms = 0;
  count_--;
  settle_needed_ = true;  // it may want to go again after this poll
}

std::size_t Parking::wake(Manager &m, std::uint64_t now, bool check_io) {
  std::size_t woken = 0;
  if (count_ == 0) {
    while (!deadlines_.empty()) deadlines_.pop();
    return 0;
  }
  if (check_io) {
    std::uint64_t data[64];
    std::uint32_t events[64];
    int n;
    do {
      n = epoll_.ready(data, events, 64);
      for (int i = 0; i < n; i++) {
        auto *c = reinterpret_cast<mg_connection *>(static_cast<std::uintptr_t>(data[i]));
        ConnState *st = Manager::state_of(c);
        if (st == nullptr || !st->parked) continue;
        // A held socket that hung up or failed cannot deliver its output.
        if ((events[i] & (EPOLLERR | EPOLLHUP)) != 0 && st->hold != 0) c->is_closing = 1;
        unpark(c, st);
        woken++;
      }
    } while (n == 64);
  }
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const Deadline d = deadlines_.top();
    deadlines_.pop();
    auto it = m.conns_.find(d.second);
    if (it == m.conns_.end()) continue;
    ConnState *st = it->second.second.get();
    if (!st->parked || st->park_deadline_ms != d.first) continue;  // stale entry
    unpark(it->second.first, st);
    woken++;
  }
  return woken;
}

std::uint64_t Parking::next_deadline() const {
  return deadlines_.empty() || count_ == 0 ? UINT64_MAX : deadlines_.top().first;
}

void Parking::relink_all(Manager &m) {
  for (auto &entry : m.conns_) unpark(entry.second.first, entry.second.second.get());
}

}  // namespace mgffi
