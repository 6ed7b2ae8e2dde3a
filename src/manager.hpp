// The manager behind the C ABI: owns a struct mg_mgr, the state of each
// connection it created, and two event queues (the one Lua reads and the
// one being filled). Its event switch (manager.cpp) routes what Mongoose
// reports to the part that owns the protocol:
//   sock.cpp         bytes in and out: raw TCP/UDP, send queue, holds, half-close
//   park.cpp         connections kept out of Mongoose's poll loop
//   accept.cpp       accepting: connection limits, EMFILE
//   http_server.cpp  HTTP requests: parsing, limits, streaming, timeouts
//   http_reply.cpp   HTTP replies
//   http_static.cpp  static files: paths, conditions, ranges (file_send.cpp: bodies)
//   ws_handshake.cpp WebSocket handshakes, permessage-deflate negotiation
//   ws.cpp           WebSocket frames in and out, compression, timeouts
//   tls.cpp, open.cpp
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conn_state.hpp"
#include "event_queue.hpp"
#include "mongoose.h"
#include "mongoose_ffi.h"
#include "noncopyable.hpp"
#include "park.hpp"

// Mongoose defines poll() as a macro for WSAPoll on Windows; the glue names
// a method poll and calls no poll() of its own.
#if defined(_WIN32) && defined(poll)
#undef poll
#endif

namespace mgffi {

class StaticFiles;  // http_static.hpp

// Appends bytes to a TCP connection's send buffer, growing it only when it
// is too small, geometrically (mg_send resizes it to fit every call). UDP:
// one datagram, sent at once (false with errno set when the kernel refuses
// it). Starts the connection's send timer when the queue was empty.
bool send_bytes(mg_connection *c, const void *buf, std::size_t len);

class Manager : NonCopyable {
 public:
  Manager();
  ~Manager();

  // ---- manager.cpp: polling, the registry, events
  int poll(int timeout_ms);
  const mgffi_event *events() const { return front_->data(); }
  const char *last_error() const { return last_error_.c_str(); }
  int fail(int code, const std::string &message);
  // Live connection by id, brought back into Mongoose's loop if it was
  // parked (any change to it may need Mongoose), or nullptr (last_error set).
  mg_connection *find(std::uint64_t id);
  // The same without unparking, for read-only queries.
  mg_connection *lookup(std::uint64_t id);
  static ConnState *state_of(mg_connection *c) { return static_cast<ConnState *>(c->fn_data); }
  std::size_t connection_count() const { return conns_.size(); }
  std::size_t connection_ids(std::uint64_t *ids, std::size_t cap) const;
  int epoll_fd() const { return mgr_.epoll_fd; }
  int poll_hint();
  // Output queued on an empty send buffer of a plain TCP connection is
  // written by the glue at the start of the next poll (flush_queued),
  // before Mongoose's iotest: Mongoose would arm EPOLLOUT for it, wait for
  // the socket to say writable, write, and disarm (two epoll_ctl calls and
  // often one more epoll_wait per reply). Replies queued in one Lua drain
  // still go out in one send per connection. A connection with an event
  // Lua has not seen yet (a WebSocket's open, queued by the upgrade) is
  // left to Mongoose, which writes after this poll's reads: the peer's
  // answer to that output then comes after the event, as before.
  void queue_flush(mg_connection *c, ConnState *st);
  // Returns true when a flushed connection needs this poll not to wait.
  bool flush_queued();
  void set_max_queue_bytes(std::uint64_t n) { max_queue_bytes_ = n; }
  std::uint64_t now() const { return poll_now_; }
  static std::uint32_t default_mask(int protocol);

  // ---- open.cpp
  int listen(const char *url, int protocol, std::uint64_t *id);
  int connect(const char *url, int protocol, std::uint64_t *id);
  int ws_connect(const char *url, const char *extra, std::size_t extra_len, std::uint64_t *id);

  // ---- sock.cpp
  int send(mg_connection *c, const void *buf, std::size_t len);
  int close(mg_connection *c, bool immediately);
  int shutdown_write(mg_connection *c);
  int pause_reading(mg_connection *c, bool paused);
  int udp_send_to(mg_connection *c, const mgffi_addr &to, const void *buf, std::size_t len);
  int datagram_failed();
  // Sets or clears one Hold reason; the connection is read only with none.
  void set_hold(mg_connection *c, ConnState *st, std::uint8_t reason, bool on);
  // MGFFI_ERR_FULL when c's send queue is at its limit.
  int check_send_room(mg_connection *c, ConnState *st);

  // ---- http_reply.cpp (checked for state by the caller-facing API)
  int http_reply(mg_connection *c, int status, const char *headers, std::size_t headers_len,
                 const char *body, std::size_t body_len);
  int http_begin_chunked(mg_connection *c, int status, const char *headers,
                         std::size_t headers_len);
  int http_write_chunk(mg_connection *c, const char *buf, std::size_t len);
  int http_end_chunked(mg_connection *c);

  // ---- http_static.cpp
  int http_serve(mg_connection *c, std::string_view target, bool is_dir,
                 const mgffi_serve_opts &opts, std::uint64_t *body_len);
  int set_file_cache(std::uint32_t max_entries, std::uint32_t valid_ms, std::uint32_t inactive_ms);

  // ---- ws.cpp
  int ws_upgrade(mg_connection *c, const char *extra, std::size_t extra_len);
  int ws_send(mg_connection *c, const void *buf, std::size_t len, int op);
  int ws_send_frame(mg_connection *c, const void *buf, std::size_t len, int op, bool fin);
  int ws_set_deflate(mg_connection *c, const DeflateConfig &config);

  // ---- tls.cpp
  int set_tls(mg_connection *c, std::shared_ptr<const TlsConfig> tls);

  // ---- limits
  int set_limit(mg_connection *c, int key, std::uint64_t value);

 private:
  friend class Parking;
  static void on_event_trampoline(mg_connection *c, int ev, void *ev_data);
  void on_event(mg_connection *c, int ev, void *ev_data);
  void on_open(mg_connection *c);
  void on_close(mg_connection *c, ConnState *st);
  void on_poll(mg_connection *c, ConnState *st);
  void on_error(mg_connection *c, ConnState *st, const char *msg);
  mgffi_event *record(mg_connection *c, ConnState *st, int type);
  bool wants(const ConnState *st, int type) const {
    return type < 32 && (st->event_mask & MGFFI_MASK(type)) != 0;
  }
  std::unique_ptr<ConnState> take_state();
  void recycle_closed_states();
  void check_timeouts(mg_connection *c, ConnState *st);
  // Earliest time a timeout of c needs a look (UINT64_MAX: none).
  std::uint64_t next_deadline(const mg_connection *c, const ConnState *st) const;
  void mark_input_pending(ConnState *st);

  // sock.cpp
  void on_raw_read(mg_connection *c, ConnState *st);
  void drain_udp(mg_connection *c, ConnState *st);
  void try_shutdown(mg_connection *c, ConnState *st);
  void on_write(mg_connection *c, ConnState *st, long n);
  void release_listening_socket(mg_connection *c);

  // accept.cpp
  bool admit(mg_connection *c, ConnState *st);
  void forget_child(mg_connection *c, ConnState *st);
  void check_accept_failures();

  // http_server.cpp
  void on_http_read(mg_connection *c, ConnState *st);
  void http_input(mg_connection *c, ConnState *st);
  bool http_start(mg_connection *c, ConnState *st);
  bool http_body(mg_connection *c, ConnState *st);
  bool http_chunked(mg_connection *c, ConnState *st);
  void http_complete(mg_connection *c, ConnState *st);
  void http_next_request(mg_connection *c, ConnState *st);
  bool http_to_streaming(mg_connection *c, ConnState *st);
  bool stream_bytes(mg_connection *c, ConnState *st, const char *p, std::size_t n,
                    std::size_t *event_index, std::size_t *streamed);
  void reject(mg_connection *c, ConnState *st, int status, const char *reason);
  void http_timeouts(mg_connection *c, ConnState *st);
  std::unique_ptr<HttpStore> take_store();
  void give_back_store(std::unique_ptr<HttpStore> store);

  // http_reply.cpp
  void finish_reply(mg_connection *c, ConnState *st);
  const char *own_connection_header(ConnState *st, const char *headers, std::size_t len);
  void send_status_and_headers(mg_connection *c, ConnState *st, int status, const char *headers,
                               std::size_t headers_len);

  // http_static.cpp, file_send.cpp
  StaticFiles *static_files();  // created on first use
  void static_head(mg_connection *c, ConnState *st, int status, std::string_view user);
  int static_text(mg_connection *c, ConnState *st, int status, std::string_view body,
                  std::string_view user, std::uint64_t *body_len);
  int static_error(mg_connection *c, ConnState *st, int status, std::string_view user,
                   std::string_view extra, std::uint64_t *body_len);
  void file_start(mg_connection *c, ConnState *st, std::shared_ptr<OpenFile> file,
                  std::uint64_t first, std::uint64_t end);
  void file_pump(mg_connection *c, ConnState *st);
  void file_on_poll(mg_connection *c, ConnState *st);
  void file_end(mg_connection *c, ConnState *st, bool complete);
  void file_poll();
  bool flush_now(mg_connection *c, ConnState *st, bool more);
  void refill_send(mg_connection *c, ConnState *st);

  // ws.cpp
  void on_ws_read(mg_connection *c, ConnState *st);
  bool ws_client_handshake(mg_connection *c, ConnState *st);
  void ws_input(mg_connection *c, ConnState *st);
  void ws_fail(mg_connection *c, ConnState *st, unsigned code, const char *reason);
  void ws_send_failure(mg_connection *c, ConnState *st);
  void ws_timeouts(mg_connection *c, ConnState *st);
  void ws_pong(mg_connection *c, ConnState *st, const unsigned char *p, std::size_t n);
  void ws_flush_pong(mg_connection *c, ConnState *st);
  std::unique_ptr<WsState> take_ws(bool client);
  void ws_configure(ConnState *st);
  void ws_send_request(mg_connection *c, ConnState *st);
  Deflater *deflater_for(ConnState *st);
  Inflater *inflater_for(ConnState *st);
  friend struct WsSink;

  // tls.cpp
  void start_tls(mg_connection *c, ConnState *st);

  mg_mgr mgr_{};
  Parking parking_;
  EventQueue queues_[2];
  EventQueue *front_ = &queues_[0];  // read by Lua
  EventQueue *back_ = &queues_[1];   // being filled
  std::unordered_map<std::uint64_t, std::pair<mg_connection *, std::unique_ptr<ConnState>>> conns_;
  std::vector<std::uint64_t> listeners_;  // ids of TCP listeners
  std::vector<std::unique_ptr<ConnState>> free_states_;
  std::vector<std::unique_ptr<ConnState>> closed_states_;  // freed next poll
  std::vector<std::unique_ptr<HttpStore>> free_stores_;
  std::vector<std::unique_ptr<WsState>> free_ws_;
  std::vector<std::uint64_t> throttled_;      // held until the next poll
  std::vector<std::uint64_t> input_pending_;  // recv to parse at the next poll
  std::vector<std::uint64_t> to_flush_;       // output queued on an empty send buffer
  std::uint32_t queue_gen_ = 1;               // counts back_'s turns (polls)
  std::vector<std::uint64_t> idle_stores_;    // give their request store back next poll
  std::unique_ptr<char[]> udp_scratch_;       // one datagram, for drain_udp
  // permessage-deflate without context takeover: streams shared by every
  // WebSocket (by level 0-9 and window bits 9-15), and one message's bytes.
  std::unique_ptr<Deflater> shared_deflaters_[10 * 7];
  std::unique_ptr<Inflater> shared_inflater_;
  ByteBuffer zbuf_;
  std::uint64_t max_queue_bytes_ = 64ull * 1024 * 1024;
  std::uint64_t poll_now_ = 0;
  std::string last_error_;
  bool freeing_ = false;
  std::unique_ptr<StaticFiles> files_;  // the static file server's state
};

}  // namespace mgffi
