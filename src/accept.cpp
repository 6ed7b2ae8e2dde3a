// Accepting: the per-listener and per-address connection limits, and
// surviving the descriptor limit (EMFILE) without a busy loop.
#include <cerrno>
#include <cstring>
#include <new>

#include "manager.hpp"
#include "platform.hpp"

namespace mgffi {

namespace {

#if MG_ENABLE_EPOLL
constexpr std::uint64_t kAcceptBackoffMs = 100;
constexpr std::uint64_t kAcceptEpisodeMs = 10000;
#endif

std::string ip_key(const mg_addr &a) {
  return std::string(reinterpret_cast<const char *>(a.addr.ip), a.is_ip6 ? 16 : 4);
}

}  // namespace

// An accepted connection past its listener's limits is refused before Lua
// hears of it: HTTP gets a 503, anything else is closed.
bool Manager::admit(mg_connection *c, ConnState *st) {
  auto parent = conns_.find(st->listener_id);
  if (parent == conns_.end() || !parent->second.second->listener) return true;
  ListenerState &ls = *parent->second.second->listener;
  ls.accepted_this_poll++;
  const char *why = nullptr;
  const std::uint64_t max = st->limit(MGFFI_LIMIT_MAX_CONNECTIONS);
  if (max != 0 && ls.children > max) why = "too many connections";
  const std::uint64_t per_ip = st->limit(MGFFI_LIMIT_MAX_CONNECTIONS_PER_IP);
  if (why == nullptr && per_ip != 0) {
    try {
      const std::uint32_t n = ++ls.per_ip[ip_key(c->rem)];
      st->per_ip_counted = true;
      if (n > per_ip) why = "too many connections from this address";
    } catch (const std::bad_alloc &) {
      why = "out of memory";
    }
  }
  if (why == nullptr) return true;
  if (st->protocol == MGFFI_PROTO_HTTP && !c->is_tls) {
    static const char k503[] =
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    send_bytes(c, k503, sizeof(k503) - 1);
    c->is_draining = 1;
    mgffi_event *e = record(c, st, MGFFI_EV_HTTP_REJECTED);
    if (e != nullptr) {
      e->value = 503;
      back_->attach_data(why, std::strlen(why));
    }
  } else {
    c->is_closing = 1;
  }
  st->http.in = HttpRequest::In::kRejected;
  st->event_mask = 0;  // nothing more of it reaches Lua
  return false;
}

void Manager::forget_child(mg_connection *c, ConnState *st) {
  if (st->listener_id == 0) return;
  auto parent = conns_.find(st->listener_id);
  if (parent == conns_.end() || !parent->second.second->listener) return;
  ListenerState &ls = *parent->second.second->listener;
  if (ls.children > 0) ls.children--;
  if (st->per_ip_counted) {
    auto it = ls.per_ip.find(ip_key(c->rem));
    if (it != ls.per_ip.end() && --it->second == 0) ls.per_ip.erase(it);
  }
}

// After each mg_mgr_poll: a listener Mongoose found readable that accepted
// nothing failed to accept. Out of descriptors (EMFILE/ENFILE), it would
// fail again at every poll under level-triggered epoll, at full CPU: it
// stops accepting for a moment instead (the kernel keeps the backlog), and
// says so once per episode (failures less than 10 s apart). Listeners due
// to accept again are re-armed. Without epoll (Windows' WSAPoll backend)
// there is no backoff: Winsock has no per-process descriptor limit to run
// into.
void Manager::check_accept_failures() {
#if MG_ENABLE_EPOLL
  const std::uint64_t now = mg_millis();
  for (std::uint64_t id : listeners_) {
    auto it = conns_.find(id);
    if (it == conns_.end() || !it->second.second->listener) continue;
    mg_connection *c = it->second.first;
    ConnState *st = it->second.second.get();
    ListenerState &ls = *st->listener;
    const bool failed = c->is_readable && ls.accepted_this_poll == 0 && !c->is_closing;
    ls.accepted_this_poll = 0;
    if (ls.accept_resume_ms != 0) {
      if (now < ls.accept_resume_ms) continue;
      ls.accept_resume_ms = 0;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLERR | EPOLLHUP;
      ev.data.ptr = c;
      epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_ADD, fd_of(c), &ev);
      continue;
    }
    if (!failed) continue;
    const int probe = fcntl(fd_of(c), F_DUPFD_CLOEXEC, 0);
    const int err = errno;
    if (probe >= 0) {
      ::close(probe);  // a transient failure (a client gone before accept)
      continue;
    }
    if (err != EMFILE && err != ENFILE) continue;
    epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_DEL, fd_of(c), nullptr);
    ls.accept_resume_ms = now + kAcceptBackoffMs;
    // One log line per episode: failures less than kAcceptEpisodeMs apart
    // (descriptors freed for a moment, then exhausted again, are one episode).
    const bool new_episode =
        ls.accept_failed_ms == 0 || now - ls.accept_failed_ms >= kAcceptEpisodeMs;
    ls.accept_failed_ms = now;
    if (new_episode) {
      char text[160];
      std::snprintf(text, sizeof(text),
                    "accept failed: %s; not accepting for %u ms at a time until descriptors "
                    "are free",
                    std::strerror(err), static_cast<unsigned>(kAcceptBackoffMs));
      on_error(c, st, text);
    }
  }
#endif
}

}  // namespace mgffi
