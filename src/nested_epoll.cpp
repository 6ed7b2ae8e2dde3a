#include "nested_epoll.hpp"

#include <cerrno>

#include "platform.hpp"

namespace mgffi {

NestedEpoll::~NestedEpoll() {
  if (fd_ >= 0) ::close(fd_);
}

bool NestedEpoll::init(mg_mgr *mgr) {
  if (mgr->epoll_fd < 0) return false;
  fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (fd_ < 0) return false;
  sentinel_.mgr = mgr;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &sentinel_;
  if (epoll_ctl(mgr->epoll_fd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

namespace {

bool add_or_modify(int epfd, int fd, epoll_event *ev) {
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev) == 0 ||
         (errno == EEXIST && epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev) == 0);
}

}  // namespace

bool NestedEpoll::watch(int fd, std::uint32_t events, std::uint64_t data, bool known) {
  if (fd_ < 0) return false;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (known && epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) == 0) return true;
  return add_or_modify(fd_, fd, &ev);
}

bool NestedEpoll::watch_ptr(int fd, std::uint32_t events, void *ptr) {
  if (fd_ < 0) return false;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = ptr;
  return add_or_modify(fd_, fd, &ev);
}

void NestedEpoll::unwatch(int fd) {
  if (fd_ >= 0) epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr);
}

bool NestedEpoll::fired() {
  const bool ready = sentinel_.is_readable != 0;
  sentinel_.is_readable = 0;
  sentinel_.is_writable = 0;
  return ready;
}

int NestedEpoll::ready(std::uint64_t *data, std::uint32_t *events, int max) {
  if (fd_ < 0) return 0;
  epoll_event evs[64];
  if (max > 64) max = 64;
  const int n = epoll_wait(fd_, evs, max, 0);
  for (int i = 0; i < n; i++) {
    data[i] = evs[i].data.u64;
    events[i] = evs[i].events;
  }
  return n < 0 ? 0 : n;
}

}  // namespace mgffi
