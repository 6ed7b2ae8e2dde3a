// What the glue knows about one connection beyond Mongoose's struct: small
// parts, one per concern, so that an idle connection holds little.
//
// How a connection ends (the one place the glue decides it):
//   open --mgffi_close(id, 0), a rejected request, a reply to a request
//          that asked to close (HttpRequest::keep_alive false)--> draining
//          (c->is_draining: Mongoose sends what is queued, then closes)
//   any  --mgffi_close(id, 1), a timeout with output stuck, an error-->
//          closing (c->is_closing: closed at the next poll, unsent bytes lost)
// A half-close (shutdown_pending) is not an end: reading goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "http_parse.hpp"
#include "http_store.hpp"
#include "limits.hpp"
#include "ws_deflate.hpp"
#include "ws_frame.hpp"

namespace mgffi {

// TLS parameters shared by a listener and the connections it accepts.
struct TlsConfig {
  std::string ca, cert, key, name;
  bool skip_verification = false;
};

// Why a connection is not read now (ConnState::hold bits). Reading resumes
// when no bit is left.
enum Hold : std::uint8_t {
  kHoldPaused = 1,     // mgffi_pause_reading
  kHoldSendQueue = 2,  // its own output is over MAX_SEND_QUEUE (until half of it left)
  kHoldPipeline = 4,   // HTTP: a request awaits its reply with the next one buffered
  kHoldThrottle = 8,   // this poll has queued max_queue_bytes already (until the next poll)
};

struct OpenFile;  // file_cache.hpp

// The part of a file still to send as a reply's body (Out::kServing).
struct FileSend {
  std::shared_ptr<OpenFile> file;  // keeps the descriptor open; null: none
  std::uint64_t offset = 0;        // next byte to send
  std::uint64_t end = 0;           // one past the last byte
  bool watched = false;            // in the glue's epoll set (waiting for room)
  bool active() const { return file != nullptr; }
  std::uint64_t remaining() const { return file ? end - offset : 0; }
};

// An accepted HTTP connection's request: what has arrived (in) and what
// has been answered (out). The next request is parsed once both are done.
struct HttpRequest {
  enum class In : std::uint8_t {
    kHead,      // waiting for (the rest of) a head
    kBody,      // a Content-Length body arriving
    kChunked,   // a chunked body arriving
    kComplete,  // all of it received
    kRejected,  // the glue answered it (4xx/5xx): input is dropped
    kWebSocket  // upgraded: the WebSocket part owns the connection
  };
  enum class Out : std::uint8_t {
    kNone,     // not handed to Lua yet
    kPending,  // handed to Lua, no reply yet
    kChunked,  // a chunked reply is open
    kServing,  // a file's body is being sent (FileSend)
    kDone      // answered (the body may still be arriving)
  };
  In in = In::kHead;
  Out out = Out::kNone;
  bool keep_alive = true;        // false: close once answered
  bool head = false;             // HEAD: reply without a body
  bool http10 = false;           // HTTP/1.0 client: keep-alive must be said
  bool streaming = false;        // the body goes to Lua as HTTP_BODY events
  bool expect_continue = false;  // 100 Continue is owed before the body
  std::size_t scanned = 0;       // head bytes already scanned for its end
  std::uint64_t remaining = 0;   // Content-Length bytes still to come
  std::uint64_t received = 0;    // body bytes so far (decoded)
  std::size_t trailer_bytes = 0;
  ChunkDecoder chunks;
  FileSend file;                     // Out::kServing: the body being sent (http_static.cpp)
  std::unique_ptr<HttpStore> store;  // the request's bytes, from the manager's pool
};

// A client's handshake, until the server's 101 arrives.
struct WsClientHello {
  std::string request;   // sent once connected
  char accept[32] = {};  // the Sec-WebSocket-Accept to expect
};

// A ping's answer waiting for room in the send queue (one at a time: RFC
// 6455 5.5.3 allows answering only the latest ping).
struct WsPong {
  std::uint8_t len = 0;
  unsigned char data[125] = {};
};

// A WebSocket connection (server side after the upgrade, or client). An
// idle WebSocket holds only this: what only some of them need (a client's
// handshake, a pong that waits) is allocated when needed.
struct WsState {
  WsReceiver rx;
  DeflateParams deflate;                   // permessage-deflate, when agreed
  std::unique_ptr<Deflater> own_deflater;  // only with context takeover
  std::unique_ptr<Inflater> own_inflater;  // only with the peer's context takeover
  std::unique_ptr<WsClientHello> hello;    // client: until the 101
  std::string request_head;                // server: the upgrade request's head
  std::unique_ptr<WsPong> pong;            // kept once allocated
  bool client = false;
  bool open = false;       // client: the 101 has arrived
  bool streaming = false;  // a message is being sent in fragments
  bool close_sent = false;
  bool closing = false;           // input is dropped; close_code goes out next poll
  bool pong_pending = false;      // *pong waits for room in the send queue
  std::uint16_t close_code = 0;   // 0: a close frame without a code
  const char *close_reason = "";  // a string literal
  std::uint64_t message_started_ms = 0;
  std::uint64_t ping_sent_ms = 0;    // idle timeout: a ping went out
  std::uint64_t control_tokens = 0;  // control-frame budget (milli-frames)
  std::uint64_t control_refill_ms = 0;
};

// A listening connection's bookkeeping.
struct ListenerState {
  std::uint32_t children = 0;  // accepted connections open
  std::uint32_t accepted_this_poll = 0;
  std::uint64_t accept_resume_ms = 0;  // out of descriptors: not watched until then
  std::uint64_t accept_failed_ms = 0;  // the last failure (an episode: failures < 10 s apart)
  std::unordered_map<std::string, std::uint32_t> per_ip;  // MAX_CONNECTIONS_PER_IP
};

struct ConnState {
  std::uint64_t id = 0;
  std::uint64_t listener_id = 0;
  std::uint32_t event_mask = 0;
  std::uint8_t protocol = MGFFI_PROTO_RAW;
  std::uint8_t hold = 0;          // Hold bits
  bool parked = false;            // out of Mongoose's list (see park.hpp)
  bool park_watched = false;      // parked with its socket in the glue's epoll set
  bool shutdown_pending = false;  // half-close once the send buffer is empty
  bool per_ip_counted = false;
  bool input_pending = false;      // recv holds bytes to parse at the next poll
  bool flush_queued = false;       // in Manager::to_flush_ (output to write at the next poll)
  std::uint32_t recorded_gen = 0;  // Manager::queue_gen_ when its last event was queued
  std::shared_ptr<Limits> limits;
  std::shared_ptr<const TlsConfig> tls;
  std::shared_ptr<const DeflateConfig> deflate;  // WebSocket compression wanted
  bool out_armed = false;                // Mongoose's epoll watches it for writing (see poll_hint)
  std::uint64_t last_read_ms = 0;        // last byte received (or connection start)
  std::uint64_t last_write_ms = 0;       // last byte the peer accepted, or when output
                                         // was queued on an empty send buffer
  std::uint64_t request_started_ms = 0;  // first byte of an incomplete request
  std::uint64_t park_deadline_ms = 0;    // parked: when a timeout needs a look
  HttpRequest http;                      // accepted HTTP connections
  std::unique_ptr<WsState> ws;
  std::unique_ptr<ListenerState> listener;

  std::uint64_t limit(int key) const { return limits->value[key]; }
  // Sets one limit of this connection only (copy on write).
  void set_limit(int key, std::uint64_t value) {
    if (limits.use_count() > 1) limits = std::make_shared<Limits>(*limits);
    limits->value[key] = value;
  }
};

}  // namespace mgffi
