// WebSocket messages (RFC 6455), both sides, framed by the glue itself:
// received frames checked and reassembled by WsReceiver (ws_frame.cpp) and
// decompressed (permessage-deflate, ws_deflate.cpp), messages sent whole,
// compressed, fragmented or streamed, automatic pongs queued without
// reallocation and coalesced, control-frame floods refused, and the
// WebSocket timeouts (idle with pings, unfinished messages). A failure
// sends the close code the RFC names, then closes. The handshakes are in
// ws_handshake.cpp.
#include <cstdio>
#include <cstring>
#include <new>

#include "manager.hpp"

namespace mgffi {

namespace {

constexpr std::size_t kPongQueueLimit = 65536;    // a pong waits while more is queued
constexpr std::size_t kKeptMessageBytes = 65536;  // reassembly buffer kept when idle

// One frame through send_bytes (masked on client connections). rsv1: the
// first frame of a compressed message.
bool send_frame(mg_connection *c, const void *buf, std::size_t len, int op, bool fin,
                bool rsv1 = false) {
  unsigned char header[14];
  unsigned char mask[4];
  if (c->is_client) mg_random(mask, sizeof(mask));
  const std::size_t n = ws_write_header(header, len, op, fin, rsv1, c->is_client ? mask : nullptr);
  if (!send_bytes(c, header, n) || !send_bytes(c, buf, len)) return false;
  if (c->is_client && len > 0) ws_unmask(c->send.buf + c->send.len - len, len, mask, 0);
  return true;
}

}  // namespace

// Hands what WsReceiver finds to Lua, and answers pings and closes.
struct WsSink : WsReceiver::Sink {
  Manager &m;
  mg_connection *c;
  ConnState *st;
  WsSink(Manager &m_, mg_connection *c_, ConnState *st_) : m(m_), c(c_), st(st_) {}

  void message(unsigned char first, const unsigned char *p, std::size_t n) override {
    if ((first & 0x40) != 0) {  // compressed: the limit and UTF-8 apply to what it inflates to
      ByteBuffer &out = m.zbuf_;
      out.clear();
      Inflater *inf = m.inflater_for(st);
      const Inflater::Status status =
          inf == nullptr ? Inflater::kNoMemory
                         : inf->inflate(p, n, &out, st->limit(MGFFI_LIMIT_WS_MAX_MESSAGE),
                                        st->ws->deflate.peer_no_context);
      if (status == Inflater::kTooBig) return m.ws_fail(c, st, 1009, "message too big");
      if (status == Inflater::kNoMemory) return m.ws_fail(c, st, 1011, "out of memory");
      if (status != Inflater::kOk) return m.ws_fail(c, st, 1007, "invalid compressed data");
      p = reinterpret_cast<const unsigned char *>(out.data());
      n = out.size();
      Utf8Validator utf8;
      if ((first & 15) == kWsText && (!utf8.feed(p, n) || !utf8.complete())) {
        return m.ws_fail(c, st, 1007, "text message is not valid UTF-8");
      }
    }
    if (!m.wants(st, MGFFI_EV_WS_MSG)) return;
    mgffi_event *e = m.record(c, st, MGFFI_EV_WS_MSG);
    if (e == nullptr) return;
    e->value = (first & 0x0f) | 0x80;
    if (!m.back_->attach_data(p, n)) mg_error(c, "out of memory");
  }

  void control(unsigned char first, const unsigned char *p, std::size_t n) override {
    WsState &ws = *st->ws;
    if (!take_token()) return;
    const int op = first & 15;
    if (m.wants(st, MGFFI_EV_WS_CTL)) {
      if (mgffi_event *e = m.record(c, st, MGFFI_EV_WS_CTL)) {
        e->value = first;
        if (!m.back_->attach_data(p, n)) mg_error(c, "out of memory");
      }
    }
    if (op == kWsPing && !ws.close_sent) {
      m.ws_pong(c, st, p, n);
    } else if (op == kWsClose && !ws.closing) {
      // The answer echoes the code (RFC 6455 5.5.1); it goes out at the
      // next poll, after Lua's answers to the messages before it.
      ws.closing = true;
      ws.close_code = n >= 2 ? static_cast<std::uint16_t>((p[0] << 8) | p[1]) : 0;
      ws.close_reason = "";
      m.mark_input_pending(st);
    }
  }

  // The control-frame budget: control_rate per second, bursts of twice that.
  bool take_token() {
    const std::uint64_t rate = st->limit(MGFFI_LIMIT_WS_CONTROL_RATE);
    if (rate == 0) return true;
    WsState &ws = *st->ws;
    const std::uint64_t now = m.now();
    const std::uint64_t capacity = 2 * rate * 1000;
    if (now > ws.control_refill_ms) {
      ws.control_tokens += (now - ws.control_refill_ms) * rate;
      if (ws.control_tokens > capacity) ws.control_tokens = capacity;
    }
    ws.control_refill_ms = now;
    if (ws.control_tokens < 1000) {
      m.ws_fail(c, st, 1008, "too many control frames");
      return false;
    }
    ws.control_tokens -= 1000;
    return true;
  }
};

void Manager::on_ws_read(mg_connection *c, ConnState *st) {
  st->ws->ping_sent_ms = 0;  // the peer is alive
  if (!st->ws->open && !ws_client_handshake(c, st)) return;
  ws_input(c, st);
}

void Manager::ws_input(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (ws.closing) {
    c->recv.len = 0;
    ws_send_failure(c, st);
    return;
  }
  if (ws.rx.status() != WsReceiver::kOk) {
    c->recv.len = 0;  // data after a close frame is ignored
    return;
  }
  WsSink sink(*this, c, st);
  const std::size_t used = ws.rx.feed(c->recv.buf, c->recv.len, sink);
  if (ws.closing) return;  // the sink failed it (control-frame flood)
  mg_iobuf_del(&c->recv, 0, used);
  if (ws.rx.status() == WsReceiver::kFailed) {
    ws_fail(c, st, ws.rx.code(), ws.rx.reason());
    return;
  }
  if (ws.rx.status() == WsReceiver::kClosed) {
    c->recv.len = 0;
    return;
  }
  if (ws.rx.in_message()) {
    if (ws.message_started_ms == 0) ws.message_started_ms = poll_now_;
  } else {
    ws.message_started_ms = 0;
    ws.rx.trim(kKeptMessageBytes);
  }
}

// Fails the WebSocket: its input is dropped from now on, and the close frame
// goes out at the next poll, after whatever Lua queues in answer to the
// messages that arrived before the offending frame (their events are ahead
// of WS_FAILED in this poll's queue).
void Manager::ws_fail(mg_connection *c, ConnState *st, unsigned code, const char *reason) {
  WsState &ws = *st->ws;
  if (ws.closing) return;
  ws.closing = true;
  ws.pong_pending = false;
  ws.close_code = static_cast<std::uint16_t>(code);
  ws.close_reason = reason;
  c->recv.len = 0;
  mark_input_pending(st);  // the next poll sends the close frame at once
  if (mgffi_event *e = record(c, st, MGFFI_EV_WS_FAILED)) {
    e->value = code;
    back_->attach_data(reason, std::strlen(reason));
  }
}

// The close frame owed (a failure, or the answer to the peer's close), then
// the end of the connection.
void Manager::ws_send_failure(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (!ws.close_sent) {
    unsigned char payload[125];
    std::size_t len = std::strlen(ws.close_reason);
    if (len > sizeof(payload) - 2) len = sizeof(payload) - 2;
    payload[0] = static_cast<unsigned char>(ws.close_code >> 8);
    payload[1] = static_cast<unsigned char>(ws.close_code);
    std::memcpy(payload + 2, ws.close_reason, len);
    send_frame(c, payload, ws.close_code != 0 ? len + 2 : 0, kWsClose, true);
    ws.close_sent = true;
  }
  c->is_draining = 1;
}

// A ping's answer: at once, or once the send queue is short again (a later
// ping replaces it).
void Manager::ws_pong(mg_connection *c, ConnState *st, const unsigned char *p, std::size_t n) {
  WsState &ws = *st->ws;
  if (c->send.len < kPongQueueLimit) {
    ws.pong_pending = false;
    send_frame(c, p, n, kWsPong, true);
    return;
  }
  if (!ws.pong) ws.pong.reset(new (std::nothrow) WsPong());
  if (!ws.pong) return;  // out of memory: this ping goes unanswered
  std::memcpy(ws.pong->data, p, n);
  ws.pong->len = static_cast<std::uint8_t>(n);
  ws.pong_pending = true;
}

void Manager::ws_flush_pong(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (!ws.pong_pending || c->send.len >= kPongQueueLimit) return;
  ws.pong_pending = false;
  if (!ws.close_sent) send_frame(c, ws.pong->data, ws.pong->len, kWsPong, true);
}

// The zlib streams of c: its own with context takeover, else the shared
// ones (reset after each message).
Deflater *Manager::deflater_for(ConnState *st) {
  WsState &ws = *st->ws;
  const int level = st->deflate ? st->deflate->level : 1;
  const int bits = ws.deflate.our_window_bits;
  std::unique_ptr<Deflater> &slot =
      ws.deflate.our_no_context ? shared_deflaters_[level * 7 + (bits - 9)] : ws.own_deflater;
  if (!slot) slot.reset(new (std::nothrow) Deflater(level, bits));
  return slot && slot->ok() ? slot.get() : nullptr;
}

Inflater *Manager::inflater_for(ConnState *st) {
  WsState &ws = *st->ws;
  std::unique_ptr<Inflater> &slot = ws.deflate.peer_no_context ? shared_inflater_ : ws.own_inflater;
  if (!slot) slot.reset(new (std::nothrow) Inflater());
  return slot && slot->ok() ? slot.get() : nullptr;
}

int Manager::ws_send(mg_connection *c, const void *buf, std::size_t len, int op) {
  ConnState *st = state_of(c);
  if (!st->ws || !c->is_websocket) return fail(MGFFI_ERR_STATE, "not a WebSocket connection");
  WsState &ws = *st->ws;
  if (!ws.open) return fail(MGFFI_ERR_STATE, "the WebSocket handshake is not complete");
  if (ws.close_sent) return fail(MGFFI_ERR_STATE, "the WebSocket is closing");
  const bool data = op == kWsText || op == kWsBinary;
  if (op < kWsClose) {  // control frames are never refused for a full queue
    if (!data) return fail(MGFFI_ERR_ARG, "opcode " + std::to_string(op) + " is not a message");
    if (ws.streaming) {
      return fail(MGFFI_ERR_STATE, "a message is being streamed: end it with mgffi_ws_send_frame");
    }
    const int room = check_send_room(c, st);
    if (room != MGFFI_OK) return room;
  }
  const void *payload = buf;
  std::size_t n = len;
  bool compressed = false;
  if (data && ws.deflate.active && st->deflate && len >= st->deflate->min_size) {
    Deflater *d = deflater_for(st);
    zbuf_.clear();
    if (d == nullptr || !d->compress(buf, len, &zbuf_, ws.deflate.our_no_context)) {
      return fail(MGFFI_ERR_NOMEM, "cannot compress the message");
    }
    // Without context, a message that does not shrink can go out as it is.
    if (!ws.deflate.our_no_context || zbuf_.size() < len) {
      payload = zbuf_.data();
      n = zbuf_.size();
      compressed = true;
    }
  }
  const std::uint64_t fragment = data ? st->limit(MGFFI_LIMIT_WS_FRAGMENT_SIZE) : 0;
  bool sent = true;
  if (fragment != 0 && n > fragment) {
    const auto *p = static_cast<const unsigned char *>(payload);
    for (std::size_t off = 0; off < n && sent; off += fragment) {
      const std::size_t piece = n - off < fragment ? n - off : static_cast<std::size_t>(fragment);
      sent = send_frame(c, p + off, piece, off == 0 ? op : kWsContinuation, off + piece == n,
                        compressed && off == 0);
    }
  } else {
    sent = send_frame(c, payload, n, op, true, compressed);
  }
  if (!sent) return fail(MGFFI_ERR_NOMEM, "out of memory");
  if (op == kWsClose) ws.close_sent = true;
  return MGFFI_OK;
}

int Manager::ws_send_frame(mg_connection *c, const void *buf, std::size_t len, int op, bool fin) {
  ConnState *st = state_of(c);
  if (!st->ws || !c->is_websocket) return fail(MGFFI_ERR_STATE, "not a WebSocket connection");
  WsState &ws = *st->ws;
  if (!ws.open) return fail(MGFFI_ERR_STATE, "the WebSocket handshake is not complete");
  if (ws.close_sent) return fail(MGFFI_ERR_STATE, "the WebSocket is closing");
  if (op >= kWsClose) return ws_send(c, buf, len, op);  // a control frame, in between
  if (op == kWsContinuation && !ws.streaming) {
    return fail(MGFFI_ERR_STATE, "no message is being streamed");
  }
  if ((op == kWsText || op == kWsBinary) && ws.streaming) {
    return fail(MGFFI_ERR_STATE, "a message is being streamed already");
  }
  if (op != kWsContinuation && op != kWsText && op != kWsBinary) {
    return fail(MGFFI_ERR_ARG, "opcode " + std::to_string(op) + " is not a message frame");
  }
  const int room = check_send_room(c, st);
  if (room != MGFFI_OK) return room;
  if (!send_frame(c, buf, len, op, fin)) return fail(MGFFI_ERR_NOMEM, "out of memory");
  ws.streaming = !fin;
  return MGFFI_OK;
}

// Timeouts of a WebSocket, checked every poll: a quiet peer is pinged after
// half of idle_timeout and closed (1001) after all of it; a fragmented
// message not finished in time is refused (1008).
void Manager::ws_timeouts(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (!ws.open || ws.closing || c->is_draining) return;
  const std::uint64_t now = poll_now_;
  const std::uint64_t idle = st->limit(MGFFI_LIMIT_WS_IDLE_TIMEOUT_MS);
  if (idle != 0 && now > st->last_read_ms) {
    const std::uint64_t quiet = now - st->last_read_ms;
    if (quiet > idle) {
      ws_fail(c, st, 1001, "idle timeout");
      return;
    }
    if (quiet > idle / 2 && ws.ping_sent_ms == 0 && !ws.close_sent) {
      send_frame(c, "", 0, kWsPing, true);
      ws.ping_sent_ms = now;
    }
  }
  const std::uint64_t message = st->limit(MGFFI_LIMIT_WS_MESSAGE_TIMEOUT_MS);
  if (message != 0 && ws.message_started_ms != 0 && now - ws.message_started_ms > message) {
    ws_fail(c, st, 1008, "message not completed in time");
  }
}

}  // namespace mgffi
