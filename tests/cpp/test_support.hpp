// Helpers for the glue tests: an RAII manager that logs every event it
// polls, a POSIX socket client that keeps polling the manager while it waits
// (server and client share one thread), and a small HTTP/1.1 response parser.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "abi_check.hpp"
#include "mongoose_ffi.h"

namespace mgtest {

// Every wait in the tests is bounded by this (milliseconds).
constexpr int kTimeoutMs = 3000;

std::string Str(const mgffi_str &s);
bool ContainsNoCase(std::string_view hay, std::string_view needle);
std::string Lower(std::string_view s);

// A copy of an event, kept after the poll that produced it.
struct SeenEvent {
  int type = 0;
  std::uint32_t flags = 0;
  std::uint64_t conn_id = 0;
  std::uint64_t listener_id = 0;
  std::int64_t value = 0;
  std::string data;
};

class Manager {
 public:
  Manager();
  ~Manager();
  Manager(const Manager &) = delete;
  Manager &operator=(const Manager &) = delete;

  mgffi_manager *get() const { return m_; }
  operator mgffi_manager *() const { return m_; }

  // One mgffi_poll(); every event is appended to log().
  int Poll(int timeout_ms = 10);
  void PollTimes(int n, int timeout_ms = 10);
  // The events of the last Poll() (valid until the next one).
  const mgffi_event *events() const { return mgffi_events(m_); }
  int count() const { return count_; }

  // Polls until the newest poll holds an event of `type` (on `conn` unless
  // 0); returns it (valid until the next Poll) or nullptr on timeout.
  const mgffi_event *PollFor(int type, std::uint64_t conn = 0, int timeout_ms = kTimeoutMs);
  // Polls until pred() is true; returns false on timeout.
  bool PollUntil(const std::function<bool()> &pred, int timeout_ms = kTimeoutMs);

  const std::vector<SeenEvent> &log() const { return log_; }
  void ClearLog() { log_.clear(); }
  std::size_t Seen(int type, std::uint64_t conn = 0) const;
  // Index in log() of the first event of type (on conn unless 0), or -1.
  int FirstSeen(int type, std::uint64_t conn = 0) const;

  // Listens (asserting success) and returns the listener's id; *port gets
  // the bound port.
  std::uint64_t Listen(const char *url, int protocol, std::uint16_t *port);

 private:
  mgffi_manager *m_ = nullptr;
  int count_ = 0;
  std::vector<SeenEvent> log_;
};

struct HttpResponse {
  int status = 0;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;
  bool has_content_length = false;
  std::size_t content_length = 0;

  // Value of the first header with that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

// Parses one response at the start of buf. Returns the bytes it spans, 0 if
// it is not complete yet, -1 if it is malformed. head_only: the response to
// a HEAD request (no body whatever the headers say).
long ParseResponse(const std::string &buf, bool head_only, HttpResponse *out);

// A plain blocking-connected, then non-blocking, TCP socket.
class Client {
 public:
  explicit Client(std::uint16_t port, const char *host = "127.0.0.1");
  ~Client();
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  bool ok() const { return fd_ >= 0; }
  std::uint16_t local_port() const;

  // Sends everything, polling m whenever the socket buffer is full.
  bool Send(Manager &m, std::string_view data, int timeout_ms = kTimeoutMs);
  // Reads whatever is available now, without blocking.
  void Pump();
  // Polls m and reads until pred(buffer()) holds; false on timeout.
  bool ReadUntil(Manager &m, const std::function<bool(const std::string &)> &pred,
                 int timeout_ms = kTimeoutMs);
  // Reads one whole response and removes its bytes from buffer().
  bool ReadResponse(Manager &m, HttpResponse *out, bool head_only = false,
                    int timeout_ms = kTimeoutMs);
  // Polls m and reads until the peer closes (EOF or reset).
  bool WaitEof(Manager &m, int timeout_ms = kTimeoutMs);
  void Close();

  std::string &buffer() { return buf_; }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
std::uint16_t UnusedPort();

// A simple request: "METHOD target HTTP/1.1\r\nHost: x\r\n<extra>\r\n".
std::string Request(std::string_view method, std::string_view target,
                    std::string_view extra_headers = "");

// A test whose manager m listens on url (protocol) before each test:
// listener is its id, port its port.
class ListenerTest : public ::testing::Test {
 protected:
  ListenerTest(const char *url, int protocol) : url_(url), protocol_(protocol) {}
  void SetUp() override {
    ASSERT_NE(m.get(), nullptr);
    listener = m.Listen(url_, protocol_, &port);
    ASSERT_NE(listener, 0u);
  }

  Manager m;
  std::uint64_t listener = 0;
  std::uint16_t port = 0;

 private:
  const char *url_;
  int protocol_;
};

}  // namespace mgtest
