// The manager behind the C ABI: owns a struct mg_mgr, the state of each
// connection it created, and two event queues (the one Lua reads and the one
// being filled).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "event_queue.hpp"
#include "http_store.hpp"
#include "mongoose.h"
#include "mongoose_ffi.h"

namespace mgffi {

// TLS parameters shared by a listener and the connections it accepts.
struct TlsConfig {
  std::string ca, cert, key, name;
  bool skip_verification = false;
};

// What the glue knows about one connection, beyond Mongoose's struct.
struct ConnState {
  std::uint64_t id = 0;
  std::uint64_t listener_id = 0;
  int protocol = MGFFI_PROTO_RAW;
  std::uint32_t event_mask = 0;
  // HTTP server side.
  std::uint64_t max_body = 0;
  std::uint64_t stream_threshold = 0;
  std::uint64_t max_ws_message = 0;
  HttpStore request;             // the request waiting for its reply
  bool request_pending = false;  // a request was delivered and not answered
  bool head_request = false;     // HEAD: reply without a body
  bool close_after_response = false;
  bool http10 = false;        // HTTP/1.0 client: keep-alive must be said
  bool headers_seen = false;  // HTTP_HDRS already handled for this request
  bool streaming = false;     // the body is being passed on as HTTP_BODY
  std::uint64_t stream_remaining = 0;
  bool chunked_open = false;       // a chunked response is being written
  bool closing_by_glue = false;    // the glue set is_draining itself
  bool rejected = false;           // answered 4xx by the glue
  bool shutdown_pending = false;   // half-close once the send buffer is empty
  bool close_when_served = false;  // serve_dir/file: close once the file is out
  bool reading_paused = false;
  std::shared_ptr<const TlsConfig> tls;
  // Hardening limits (see mgffi_set_limits).
  std::uint32_t max_connections = MGFFI_DEFAULT_MAX_CONNECTIONS;
  std::uint32_t idle_timeout_ms = 0;
  std::uint32_t request_timeout_ms = 0;
  std::uint32_t max_header_size = MGFFI_DEFAULT_MAX_HEADER_SIZE;
  std::uint32_t max_headers = MGFFI_DEFAULT_MAX_HEADERS;
  std::uint32_t children = 0;            // listener: accepted connections open
  std::uint64_t last_activity_ms = 0;    // last read, write or reply
  std::uint64_t request_started_ms = 0;  // first byte of an incomplete request
  bool throttled = false;                // not read until next poll (queue cap)
  char held_tail[20] = {};               // an unfinished chunk size line (check_chunks)
  std::uint8_t held_tail_len = 0;

  void reset() { *this = ConnState(); }
};

// Appends bytes to a TCP connection's send buffer, growing it only when it
// is too small, geometrically (mg_send resizes it to fit every call: a
// reply over MG_IO_SIZE cost two allocations each time, and queueing many
// sends copied quadratically). UDP: one datagram, sent at once.
bool send_bytes(mg_connection *c, const void *buf, std::size_t len);

// One WebSocket frame through send_bytes (masked on client connections):
// mg_ws_send without its buffer resizing. op: the first header byte's low
// bits (1 text, 2 binary, 8 close, 9 ping, 10 pong).
bool send_ws_frame(mg_connection *c, const void *buf, std::size_t len, int op);

class Manager {
 public:
  Manager();
  ~Manager();
  Manager(const Manager &) = delete;
  Manager &operator=(const Manager &) = delete;

  int poll(int timeout_ms);
  const mgffi_event *events() const { return front_->data(); }
  const char *last_error() const { return last_error_.c_str(); }
  int fail(int code, const std::string &message);

  int listen(const char *url, int protocol, std::uint64_t *id);
  int connect(const char *url, int protocol, std::uint64_t *id);

  // Live connection by id, or nullptr (and last_error set).
  mg_connection *find(std::uint64_t id);
  ConnState *state_of(mg_connection *c) { return static_cast<ConnState *>(c->fn_data); }
  std::size_t connection_count() const { return conns_.size(); }
  int epoll_fd() const { return mgr_.epoll_fd; }
  int poll_hint() const;
  std::size_t connection_ids(std::uint64_t *ids, std::size_t cap) const;

  // HTTP replies (checked for state by the caller-facing API).
  int http_reply(mg_connection *c, int status, const char *headers, std::size_t headers_len,
                 const char *body, std::size_t body_len);
  int http_begin_chunked(mg_connection *c, int status, const char *headers,
                         std::size_t headers_len);
  int http_write_chunk(mg_connection *c, const char *buf, std::size_t len);
  int http_end_chunked(mg_connection *c);
  int http_serve(mg_connection *c, const char *root_or_path, bool is_dir, const char *extra_headers,
                 const char *mime_types);
  int ws_upgrade(mg_connection *c, const char *extra, std::size_t extra_len);
  int ws_connect(const char *url, const char *extra, std::size_t extra_len, std::uint64_t *id);

  int shutdown_write(mg_connection *c);
  void release_listening_socket(mg_connection *c);
  int set_tls(mg_connection *c, std::shared_ptr<const TlsConfig> tls);
  void set_max_queue_bytes(std::uint64_t n) { max_queue_bytes_ = n; }
  int pause_reading(mg_connection *c, bool paused);
  int udp_send_to(mg_connection *c, const mgffi_addr &to, const void *buf, std::size_t len);
  // ERR_STATE with the kernel's reason (errno) for a datagram it refused.
  int datagram_failed();

  static std::uint32_t default_mask(int protocol);

 private:
  static void on_event_trampoline(mg_connection *c, int ev, void *ev_data);
  void on_event(mg_connection *c, int ev, void *ev_data);
  void on_open(mg_connection *c);
  void on_close(mg_connection *c, ConnState *st);
  void on_http_headers(mg_connection *c, ConnState *st, mg_http_message *hm);
  void on_http_message(mg_connection *c, ConnState *st, mg_http_message *hm);
  void check_parse_failure(mg_connection *c, ConnState *st);
  bool answer_expect(mg_connection *c, ConnState *st, mg_http_message *hm);
  bool check_chunks(mg_connection *c, ConnState *st, mg_http_message *hm);
  void restore_held_tail(mg_connection *c, ConnState *st);
  void check_ws_size(mg_connection *c, ConnState *st);
  void refuse_ws_message(mg_connection *c, ConnState *st, std::uint64_t size);
  void stream_body(mg_connection *c, ConnState *st);
  void drain_udp(mg_connection *c, ConnState *st);
  void apply_paused_reads();
  void try_shutdown(mg_connection *c, ConnState *st);
  void start_tls(mg_connection *c, ConnState *st);
  void check_timeouts(mg_connection *c, ConnState *st, std::uint64_t now);
  bool over_connection_limit(mg_connection *c, ConnState *st);
  void reject(mg_connection *c, ConnState *st, int status, const char *reason);
  void finish_response(mg_connection *c, ConnState *st);
  const char *own_connection_header(ConnState *st, const char *headers, std::size_t len);
  void send_status_and_headers(mg_connection *c, ConnState *st, int status, const char *headers,
                               std::size_t headers_len);
  mgffi_event *record(mg_connection *c, ConnState *st, int type);
  std::unique_ptr<ConnState> take_state();

  mg_mgr mgr_{};
  EventQueue queues_[2];
  EventQueue *front_ = &queues_[0];  // read by Lua
  EventQueue *back_ = &queues_[1];   // being filled
  std::unordered_map<std::uint64_t, std::pair<mg_connection *, std::unique_ptr<ConnState>>> conns_;
  std::vector<std::unique_ptr<ConnState>> free_states_;
  std::vector<std::unique_ptr<ConnState>> closed_states_;  // freed next poll
  std::vector<std::uint64_t> paused_;                      // connections whose reads are paused
  std::unique_ptr<char[]> udp_scratch_;                    // one datagram, for drain_udp
  std::vector<std::uint64_t> throttled_;                   // unthrottled at the next poll
  std::uint64_t max_queue_bytes_ = 64ull * 1024 * 1024;
  std::uint64_t poll_now_ = 0;
  std::string last_error_;
  bool freeing_ = false;
};

}  // namespace mgffi
