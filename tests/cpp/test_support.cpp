#include "test_support.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace mgtest {

std::string Str(const mgffi_str &s) {
  if (s.ptr == nullptr || s.len == 0) return std::string();
  return std::string(s.ptr, s.len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char &ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  return Lower(hay).find(Lower(needle)) != std::string::npos;
}

// ---- Manager --------------------------------------------------------------

Manager::Manager() : m_(mgffi_manager_new()) {
  // Errors only, unless MGFFI_TEST_LOG asks for more (0..4).
  const char *level = std::getenv("MGFFI_TEST_LOG");
  mgffi_log_set_level(level != nullptr ? std::atoi(level) : 1);
}

Manager::~Manager() {
  mgffi_manager_free(m_);
}

int Manager::Poll(int timeout_ms) {
  int n = mgffi_poll(m_, timeout_ms);
  count_ = n < 0 ? 0 : n;
  const mgffi_event *ev = mgffi_events(m_);
  for (int i = 0; i < count_; i++) {
    SeenEvent s;
    s.type = ev[i].type;
    s.flags = ev[i].flags;
    s.conn_id = ev[i].conn_id;
    s.listener_id = ev[i].listener_id;
    s.value = ev[i].value;
    s.data = Str(ev[i].data);
    log_.push_back(std::move(s));
  }
  return n;
}

void Manager::PollTimes(int n, int timeout_ms) {
  for (int i = 0; i < n; i++) Poll(timeout_ms);
}

const mgffi_event *Manager::PollFor(int type, std::uint64_t conn, int timeout_ms) {
  const std::uint64_t deadline = mgffi_millis() + static_cast<std::uint64_t>(timeout_ms);
  while (mgffi_millis() < deadline) {
    Poll(10);
    const mgffi_event *ev = events();
    for (int i = 0; i < count_; i++) {
      if (ev[i].type == type && (conn == 0 || ev[i].conn_id == conn)) return &ev[i];
    }
  }
  return nullptr;
}

bool Manager::PollUntil(const std::function<bool()> &pred, int timeout_ms) {
  const std::uint64_t deadline = mgffi_millis() + static_cast<std::uint64_t>(timeout_ms);
  while (!pred()) {
    if (mgffi_millis() >= deadline) return false;
    Poll(10);
  }
  return true;
}

std::size_t Manager::Seen(int type, std::uint64_t conn) const {
  return static_cast<std::size_t>(std::count_if(log_.begin(), log_.end(), [&](const SeenEvent &e) {
    return e.type == type && (conn == 0 || e.conn_id == conn);
  }));
}

int Manager::FirstSeen(int type, std::uint64_t conn) const {
  for (std::size_t i = 0; i < log_.size(); i++) {
    if (log_[i].type == type && (conn == 0 || log_[i].conn_id == conn)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::uint64_t Manager::Listen(const char *url, int protocol, std::uint16_t *port) {
  std::uint64_t id = 0;
  int rc = mgffi_listen(m_, url, std::strlen(url), protocol, &id);
  EXPECT_EQ(rc, MGFFI_OK) << url << ": " << mgffi_last_error(m_);
  if (rc != MGFFI_OK) return 0;
  mgffi_conn_info info{};
  EXPECT_EQ(mgffi_get_conn_info(m_, id, &info), MGFFI_OK) << mgffi_last_error(m_);
  EXPECT_NE(info.local.port, 0);
  if (port != nullptr) *port = info.local.port;
  return id;
}

// ---- HTTP response parsing -------------------------------------------------

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto &h : headers) {
    if (Lower(h.first) == Lower(name)) return h.second;
  }
  return std::string();
}

bool HttpResponse::HasHeader(std::string_view name) const {
  for (const auto &h : headers) {
    if (Lower(h.first) == Lower(name)) return true;
  }
  return false;
}

namespace {

std::string Trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
  return std::string(s.substr(a, b - a));
}

}  // namespace

long ParseResponse(const std::string &buf, bool head_only, HttpResponse *out) {
  const std::size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  HttpResponse r;
  std::size_t line_end = buf.find("\r\n");
  r.status_line = buf.substr(0, line_end);
  if (r.status_line.compare(0, 5, "HTTP/") != 0) return -1;
  std::size_t sp = r.status_line.find(' ');
  if (sp == std::string::npos) return -1;
  r.status = std::atoi(r.status_line.c_str() + sp + 1);
  std::size_t pos = line_end + 2;
  while (pos < head_end + 2) {
    std::size_t eol = buf.find("\r\n", pos);
    std::string line = buf.substr(pos, eol - pos);
    pos = eol + 2;
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) return -1;
    r.headers.emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  }
  pos = head_end + 4;
  r.chunked = Lower(r.Header("Transfer-Encoding")) == "chunked";
  r.has_content_length = r.HasHeader("Content-Length");
  if (r.has_content_length) {
    r.content_length =
        static_cast<std::size_t>(std::strtoull(r.Header("Content-Length").c_str(), nullptr, 10));
  }
  if (head_only || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200)) {
    // no body
  } else if (r.chunked) {
    for (;;) {
      std::size_t eol = buf.find("\r\n", pos);
      if (eol == std::string::npos) return 0;
      std::string size_line = buf.substr(pos, eol - pos);
      char *end = nullptr;
      unsigned long size = std::strtoul(size_line.c_str(), &end, 16);
      if (end == size_line.c_str()) return -1;
      pos = eol + 2;
      if (size == 0) {
        // Trailers, then an empty line.
        for (;;) {
          std::size_t t = buf.find("\r\n", pos);
          if (t == std::string::npos) return 0;
          bool empty = t == pos;
          pos = t + 2;
          if (empty) break;
        }
        break;
      }
      if (buf.size() < pos + size + 2) return 0;
      r.body.append(buf, pos, size);
      if (buf.compare(pos + size, 2, "\r\n") != 0) return -1;
      pos += size + 2;
    }
  } else if (r.has_content_length) {
    if (buf.size() < pos + r.content_length) return 0;
    r.body = buf.substr(pos, r.content_length);
    pos += r.content_length;
  } else {
    return -1;  // the glue always sends a length or chunks
  }
  if (out != nullptr) *out = std::move(r);
  return static_cast<long>(pos);
}

// ---- Client ----------------------------------------------------------------

Client::Client(std::uint16_t port, const char *host) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int af = std::strchr(host, ':') != nullptr ? AF_INET6 : AF_INET;
  if (af == AF_INET) {
    auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) return;
    len = sizeof(*sin);
  } else {
    auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) return;
    len = sizeof(*sin6);
  }
  int fd = socket(af, SOCK_STREAM, 0);
  if (fd < 0) return;
  // The listener's backlog completes the handshake without the server's
  // help, so a blocking connect does not need the manager to be polled.
  if (connect(fd, reinterpret_cast<sockaddr *>(&ss), len) != 0) {
    close(fd);
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fd_ = fd;
}

Client::~Client() {
  Close();
}

void Client::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::uint16_t Client::local_port() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (fd_ < 0 || getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
}

bool Client::Send(Manager &m, std::string_view data, int timeout_ms) {
  if (fd_ < 0) return false;
  const std::uint64_t deadline = mgffi_millis() + static_cast<std::uint64_t>(timeout_ms);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    if (mgffi_millis() >= deadline) return false;
    m.Poll(10);
    Pump();  // keep our receive side drained too
  }
  return true;
}

void Client::Pump() {
  if (fd_ < 0 || eof_) return;
  char tmp[65536];
  for (;;) {
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      eof_ = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      eof_ = true;  // reset counts as closed
    }
    return;
  }
}

bool Client::ReadUntil(Manager &m, const std::function<bool(const std::string &)> &pred,
                       int timeout_ms) {
  const std::uint64_t deadline = mgffi_millis() + static_cast<std::uint64_t>(timeout_ms);
  for (;;) {
    Pump();
    if (pred(buf_)) return true;
    if (eof_ || mgffi_millis() >= deadline) return false;
    m.Poll(10);
  }
}

bool Client::ReadResponse(Manager &m, HttpResponse *out, bool head_only, int timeout_ms) {
  long consumed = 0;
  bool ok = ReadUntil(
      m,
      [&](const std::string &b) {
        consumed = ParseResponse(b, head_only, out);
        return consumed != 0;
      },
      timeout_ms);
  if (!ok) {
    // The peer may have closed right after a complete response.
    consumed = ParseResponse(buf_, head_only, out);
  }
  if (consumed <= 0) return false;
  buf_.erase(0, static_cast<std::size_t>(consumed));
  return true;
}

bool Client::WaitEof(Manager &m, int timeout_ms) {
  const std::uint64_t deadline = mgffi_millis() + static_cast<std::uint64_t>(timeout_ms);
  for (;;) {
    Pump();
    if (eof_) return true;
    if (mgffi_millis() >= deadline) return false;
    m.Poll(10);
  }
}

// ---- misc ------------------------------------------------------------------

std::uint16_t UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  socklen_t len = sizeof(sin);
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len) == 0) {
    port = ntohs(sin.sin_port);
  }
  close(fd);
  return port;
}

std::string Request(std::string_view method, std::string_view target,
                    std::string_view extra_headers) {
  std::string r;
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  r.append(extra_headers).append("\r\n");
  return r;
}

}  // namespace mgtest
