// What differs between the platforms the glue builds for: Linux (epoll,
// sendfile, POSIX sockets) and Windows (Winsock, Mongoose's WSAPoll
// backend). The rest of the glue includes this instead of the system
// headers it would need for sockets, files and epoll.
//
// On Windows the epoll and sendfile calls are inert: Mongoose's
// mgr->epoll_fd is -1 there, so NestedEpoll::init fails, connections are
// never parked, files are sent through the send buffer (as with TLS), and
// the few direct epoll_ctl calls on Mongoose's set (a listener's accept
// backoff, a re-registered connection) do nothing.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "mongoose.h"

#if defined(_WIN32)

#include <direct.h>
#include <fcntl.h>
#include <io.h>
#include <sys/stat.h>
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstdlib>

namespace mgffi {

using sock_t = SOCKET;
using io_len_t = int;  // Winsock's send and recv lengths
#if defined(_MSC_VER)
using ssize_t = std::intptr_t;
#endif

inline int sock_errno() {
  return WSAGetLastError();
}
inline void clear_sock_errno() {
  WSASetLastError(0);
}
// Whether a datagram waits on s. Mongoose leaves UDP client sockets
// blocking and Winsock has no MSG_DONTWAIT: a read must not start
// without one.
inline bool datagram_waiting(sock_t s) {
  u_long n = 0;
  return ioctlsocket(s, FIONREAD, &n) == 0 && n > 0;
}
inline bool sock_would_block(int err) {
  return err == WSAEWOULDBLOCK;
}
inline bool sock_interrupted(int err) {
  return err == WSAEINTR;
}
inline int close_socket(sock_t s) {
  return closesocket(s);
}
// A Winsock error (WSAGetLastError) as text: the common ones in the words
// strerror uses on Linux (so that messages match across platforms), the
// others as the system says them.
inline std::string sock_error_text(int err) {
  switch (err) {
    case WSAEADDRINUSE: return "Address already in use";
    case WSAEADDRNOTAVAIL: return "Cannot assign requested address";
    case WSAECONNREFUSED: return "Connection refused";
    case WSAECONNRESET: return "Connection reset by peer";
    case WSAECONNABORTED: return "Software caused connection abort";
    case WSAETIMEDOUT: return "Connection timed out";
    case WSAEHOSTUNREACH: return "No route to host";
    case WSAENETUNREACH: return "Network is unreachable";
    case WSAEACCES: return "Permission denied";
    case WSAEMSGSIZE: return "Message too long";
    case WSAEMFILE: return "Too many open files";
    case WSAENOBUFS: return "No buffer space available";
    case WSAEAFNOSUPPORT: return "Address family not supported by protocol";
    default: break;
  }
  char buf[256] = {0};
  const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                                 nullptr, static_cast<DWORD>(err), 0, buf, sizeof(buf), nullptr);
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == '.')) s.pop_back();
  return s.empty() ? "socket error " + std::to_string(err) : s;
}

constexpr int kShutWrite = SD_SEND;
constexpr int kSendFlags = 0;  // no SIGPIPE on Windows, and sockets are nonblocking already
constexpr int kSendMoreFlag = 0;
constexpr int kRecvFlags = 0;
constexpr int kOpenReadFlags = O_RDONLY | O_BINARY;

// pread: one read at an offset, not moving the descriptor's position.
inline ssize_t pread_at(int fd, void *buf, std::size_t n, std::uint64_t offset) {
  HANDLE h = reinterpret_cast<HANDLE>(_get_osfhandle(fd));
  if (h == INVALID_HANDLE_VALUE) {
    errno = EBADF;
    return -1;
  }
  OVERLAPPED ov{};
  ov.Offset = static_cast<DWORD>(offset & 0xffffffffu);
  ov.OffsetHigh = static_cast<DWORD>(offset >> 32);
  DWORD got = 0;
  const DWORD want = n > 0x40000000u ? 0x40000000u : static_cast<DWORD>(n);
  if (!ReadFile(h, buf, want, &got, &ov)) {
    if (GetLastError() == ERROR_HANDLE_EOF) return 0;
    errno = EIO;
    return -1;
  }
  return static_cast<ssize_t>(got);
}

// realpath: the absolute path of an existing file, with '/' separators (as
// the static file server compares paths); malloc'ed, like realpath's.
inline char *real_path(const char *path) {
  std::string p(path);
  while (p.size() > 1 && (p.back() == '/' || p.back() == '\\')) p.pop_back();
  struct _stat64 sb;
  if (_stat64(p.c_str(), &sb) != 0) return nullptr;
  char *full = _fullpath(nullptr, p.c_str(), 0);
  if (full == nullptr) return nullptr;
  std::size_t n = 0;
  for (char *c = full; *c != '\0'; c++, n++) {
    if (*c == '\\') *c = '/';
  }
  if (n > 3 && full[n - 1] == '/') full[n - 1] = '\0';  // "C:/" stays
  return full;
}

template <typename Stat>
std::int64_t mtime_sec(const Stat &sb) {
  return static_cast<std::int64_t>(sb.st_mtime);
}

// Milliseconds since the Unix epoch, from the system clock.
inline std::uint64_t system_time_ms() {
  FILETIME ft;
  GetSystemTimeAsFileTime(&ft);
  const std::uint64_t t = (static_cast<std::uint64_t>(ft.dwHighDateTime) << 32) | ft.dwLowDateTime;
  return (t - 116444736000000000ull) / 10000;  // from 100 ns units since 1601
}
template <typename Stat>
long mtime_nsec(const Stat &) {
  return 0;
}

}  // namespace mgffi

// Inert epoll, for the code paths that run only when epoll is on (see above).
enum : std::uint32_t {
  EPOLLIN = 0x001,
  EPOLLOUT = 0x004,
  EPOLLERR = 0x008,
  EPOLLHUP = 0x010,
  EPOLLRDHUP = 0x2000,
  EPOLLONESHOT = 1u << 30,
};
enum { EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLL_CLOEXEC = 0 };
union epoll_data {
  void *ptr;
  int fd;
  std::uint32_t u32;
  std::uint64_t u64;
};
struct epoll_event {
  std::uint32_t events;
  epoll_data data;
};
inline int epoll_create1(int) {
  errno = ENOSYS;
  return -1;
}
inline int epoll_ctl(int, int, int, epoll_event *) {
  errno = ENOSYS;
  return -1;
}
inline int epoll_wait(int, epoll_event *, int, int) {
  errno = ENOSYS;
  return -1;
}

#else  // POSIX (Linux)

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace mgffi {

using sock_t = int;
using io_len_t = std::size_t;

inline int sock_errno() {
  return errno;
}
inline void clear_sock_errno() {
  errno = 0;
}
inline bool datagram_waiting(sock_t) {
  return true;  // recvfrom with MSG_DONTWAIT says when there is none
}
inline bool sock_would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}
inline bool sock_interrupted(int err) {
  return err == EINTR;
}
inline int close_socket(sock_t s) {
  return ::close(s);
}
inline std::string sock_error_text(int err) {
  return std::strerror(err);
}

constexpr int kShutWrite = SHUT_WR;
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;
constexpr int kSendMoreFlag = MSG_MORE;
constexpr int kRecvFlags = MSG_DONTWAIT;
constexpr int kOpenReadFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

inline ssize_t pread_at(int fd, void *buf, std::size_t n, std::uint64_t offset) {
  return ::pread(fd, buf, n, static_cast<off_t>(offset));
}

inline char *real_path(const char *path) {
  return ::realpath(path, nullptr);
}

template <typename Stat>
std::int64_t mtime_sec(const Stat &sb) {
  return static_cast<std::int64_t>(sb.st_mtim.tv_sec);
}
template <typename Stat>
long mtime_nsec(const Stat &sb) {
  return sb.st_mtim.tv_nsec;
}

}  // namespace mgffi

#endif

namespace mgffi {

// The socket of a Mongoose connection.
inline sock_t sock_of(const mg_connection *c) {
  return static_cast<sock_t>(reinterpret_cast<std::size_t>(c->fd));
}

// The same as an int, as epoll_ctl and sendfile take it (Linux).
inline int fd_of(const mg_connection *c) {
  return static_cast<int>(reinterpret_cast<std::size_t>(c->fd));
}

}  // namespace mgffi
