// WebSocket (RFC 6455), both sides, framed by the glue itself: the
// handshakes (the server's 101, the client's request and its check of the
// 101), received frames checked and reassembled by WsReceiver (ws_frame.cpp),
// automatic pongs queued without reallocation and coalesced, control-frame
// floods refused, and the WebSocket timeouts (idle with pings, unfinished
// messages). A failure sends the close code the RFC names, then closes.
#include <cstdio>
#include <cstring>
#include <new>

#include "manager.hpp"

namespace mgffi {

namespace {

constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t kPongQueueLimit = 65536;    // a pong waits while more is queued
constexpr std::size_t kKeptMessageBytes = 65536;  // reassembly buffer kept when idle
constexpr std::size_t kMaxHandshakeResponse = 16384;

// Sec-WebSocket-Accept for key (RFC 6455 4.2.2): base64(SHA-1(key + GUID)).
void accept_for(mg_str key, char out[32]) {
  mg_sha1_ctx ctx;
  unsigned char digest[20];
  mg_sha1_init(&ctx);
  mg_sha1_update(&ctx, reinterpret_cast<const unsigned char *>(key.buf), key.len);
  mg_sha1_update(&ctx, reinterpret_cast<const unsigned char *>(kGuid), sizeof(kGuid) - 1);
  mg_sha1_final(digest, &ctx);
  mg_base64_encode(digest, sizeof(digest), out, 32);
}

// A comma-separated header value holding token (case-insensitive).
bool has_token(const mg_str *value, const char *token) {
  if (value == nullptr) return false;
  mg_str rest = *value, item;
  while (mg_span(rest, &item, &rest, ',')) {
    while (item.len > 0 && (item.buf[0] == ' ' || item.buf[0] == '\t')) item.buf++, item.len--;
    while (item.len > 0 && (item.buf[item.len - 1] == ' ' || item.buf[item.len - 1] == '\t')) {
      item.len--;
    }
    if (mg_strcasecmp(item, mg_str(token)) == 0) return true;
  }
  return false;
}

// One frame through send_bytes (masked on client connections).
bool send_frame(mg_connection *c, const void *buf, std::size_t len, int op, bool fin) {
  unsigned char header[14];
  unsigned char mask[4];
  if (c->is_client) mg_random(mask, sizeof(mask));
  const std::size_t n = ws_write_header(header, len, op, fin, false, c->is_client ? mask : nullptr);
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
    if (!m.wants(st, MGFFI_EV_WS_MSG)) return;
    mgffi_event *e = m.record(c, st, MGFFI_EV_WS_MSG);
    if (e == nullptr) return;
    e->value = first | 0x80;
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
      // One pong at a time (RFC 6455 5.5.3 allows answering only the
      // latest ping): it waits while the send queue is long.
      std::memcpy(ws.pong, p, n);
      ws.pong_len = static_cast<std::uint8_t>(n);
      ws.pong_pending = true;
      m.ws_flush_pong(c, st);
    } else if (op == kWsClose && !ws.closing) {
      // The answer echoes the code (RFC 6455 5.5.1); it goes out at the
      // next poll, after Lua's answers to the messages before it.
      ws.closing = true;
      ws.close_code = n >= 2 ? static_cast<std::uint16_t>((p[0] << 8) | p[1]) : 0;
      ws.close_reason[0] = '\0';
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

std::unique_ptr<WsState> Manager::take_ws(bool client) {
  std::unique_ptr<WsState> ws;
  if (!free_ws_.empty()) {
    ws = std::move(free_ws_.back());
    free_ws_.pop_back();
    WsReceiver rx = std::move(ws->rx);
    rx.reset();
    *ws = WsState();
    ws->rx = std::move(rx);
  } else {
    ws.reset(new (std::nothrow) WsState());
  }
  if (ws) {
    ws->client = client;
    ws->control_refill_ms = mg_millis();
  }
  return ws;
}

void Manager::ws_configure(ConnState *st) {
  WsReceiver::Config config;
  config.expect_masked = !st->ws->client;
  config.allow_rsv1 = false;
  config.max_message = st->limit(MGFFI_LIMIT_WS_MAX_MESSAGE);
  st->ws->rx.configure(config);
  const std::uint64_t rate = st->limit(MGFFI_LIMIT_WS_CONTROL_RATE);
  st->ws->control_tokens = 2 * rate * 1000;
}

int Manager::ws_upgrade(mg_connection *c, const char *extra, std::size_t extra_len) {
  ConnState *st = state_of(c);
  HttpRequest &r = st->http;
  if (r.out != HttpRequest::Out::kPending || r.in != HttpRequest::In::kComplete) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  mg_http_message &hm = r.store->mongoose_view();
  mg_str *key = mg_http_get_header(&hm, "Sec-WebSocket-Key");
  char decoded[32];
  if (key == nullptr || key->len != 24 ||
      mg_base64_decode(key->buf, key->len, decoded, sizeof(decoded)) != 16) {
    static const char kBody[] = "invalid Sec-WebSocket-Key\n";
    http_reply(c, 400, nullptr, 0, kBody, sizeof(kBody) - 1);
    return fail(MGFFI_ERR_STATE, "invalid Sec-WebSocket-Key: answered 400");
  }
  mg_str *version = mg_http_get_header(&hm, "Sec-WebSocket-Version");
  if (version == nullptr || mg_strcmp(*version, mg_str("13")) != 0) {
    static const char kHeaders[] = "Sec-WebSocket-Version: 13\r\n";
    static const char kBody[] = "unsupported WebSocket version\n";
    http_reply(c, 426, kHeaders, sizeof(kHeaders) - 1, kBody, sizeof(kBody) - 1);
    return fail(MGFFI_ERR_STATE, "unsupported Sec-WebSocket-Version: answered 426");
  }
  std::unique_ptr<WsState> ws = take_ws(false);
  if (!ws) return fail(MGFFI_ERR_NOMEM, "out of memory");
  char accept[32];
  accept_for(*key, accept);
  char head[192];
  const int n = std::snprintf(head, sizeof(head),
                              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                              accept);
  send_bytes(c, head, static_cast<std::size_t>(n));
  if (extra_len > 0) send_bytes(c, extra, extra_len);
  send_bytes(c, "\r\n", 2);
  st->ws = std::move(ws);
  ws_configure(st);
  st->ws->open = true;
  c->is_websocket = 1;
  r.in = HttpRequest::In::kWebSocket;
  r.out = HttpRequest::Out::kDone;
  st->request_started_ms = 0;
  st->last_read_ms = mg_millis();
  if (wants(st, MGFFI_EV_WS_OPEN)) {
    if (mgffi_event *e = record(c, st, MGFFI_EV_WS_OPEN)) e->http = &r.store->view();
  }
  try {
    idle_stores_.push_back(st->id);  // the request's views are valid until the next poll
  } catch (const std::bad_alloc &) {
    // Given back when the connection closes.
  }
  if (c->recv.len > 0) mark_input_pending(st);  // frames sent right behind the request
  return MGFFI_OK;
}

int Manager::ws_connect(const char *url, const char *extra, std::size_t extra_len,
                        std::uint64_t *id) {
  mg_connection *c = mg_connect(&mgr_, url, on_event_trampoline, nullptr);
  if (c == nullptr) return fail(MGFFI_ERR_CONNECT, std::string("cannot connect to ") + url);
  ConnState *st = state_of(c);
  std::unique_ptr<WsState> ws = st != nullptr ? take_ws(true) : nullptr;
  if (!ws) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  st->protocol = MGFFI_PROTO_HTTP;
  st->event_mask = default_mask(MGFFI_PROTO_HTTP);
  st->limits = default_limits(MGFFI_PROTO_HTTP);
  unsigned char nonce[16];
  char key[32];
  mg_random(nonce, sizeof(nonce));
  mg_base64_encode(nonce, sizeof(nonce), key, sizeof(key));
  accept_for(mg_str(key), ws->accept);
  const mg_str host = mg_url_host(url);
  const unsigned port = mg_url_port(url);
  const bool default_port = port == (mg_url_is_ssl(url) ? 443u : 80u);
  char head[512];
  const int n = std::snprintf(
      head, sizeof(head),
      default_port ? "GET %s HTTP/1.1\r\nHost: %.*s\r\n" : "GET %s HTTP/1.1\r\nHost: %.*s:%u\r\n",
      mg_url_uri(url), static_cast<int>(host.len), host.buf, port);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(head)) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_ARG, std::string("URL too long: ") + url);
  }
  send_bytes(c, head, static_cast<std::size_t>(n));
  char rest[160];
  const int m = std::snprintf(rest, sizeof(rest),
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n",
                              key);
  send_bytes(c, rest, static_cast<std::size_t>(m));
  if (extra_len > 0) send_bytes(c, extra, extra_len);
  send_bytes(c, "\r\n", 2);
  st->ws = std::move(ws);
  ws_configure(st);
  *id = c->id;
  return MGFFI_OK;
}

// The client's wait for the server's 101. True once it has arrived.
bool Manager::ws_client_handshake(mg_connection *c, ConnState *st) {
  const int n = mg_http_get_request_len(c->recv.buf, c->recv.len);
  if (n == 0 && c->recv.len < kMaxHandshakeResponse) return false;
  mg_http_message hm;
  const char *why = nullptr;
  if (n <= 0 || mg_http_parse(reinterpret_cast<const char *>(c->recv.buf), n, &hm) <= 0) {
    why = "WebSocket handshake failed: not an HTTP response";
  } else if (mg_http_status(&hm) != 101) {
    why = "WebSocket handshake failed: the server did not answer 101";
  } else if (!has_token(mg_http_get_header(&hm, "Upgrade"), "websocket") ||
             !has_token(mg_http_get_header(&hm, "Connection"), "upgrade")) {
    why = "WebSocket handshake failed: no Upgrade: websocket in the 101";
  } else {
    mg_str *accept = mg_http_get_header(&hm, "Sec-WebSocket-Accept");
    if (accept == nullptr || mg_strcmp(*accept, mg_str(st->ws->accept)) != 0) {
      why = "WebSocket handshake failed: wrong Sec-WebSocket-Accept";
    }
  }
  if (why != nullptr) {
    on_error(c, st, why);
    c->is_closing = 1;
    c->recv.len = 0;
    return false;
  }
  if (wants(st, MGFFI_EV_WS_OPEN)) {
    mgffi_event *e = record(c, st, MGFFI_EV_WS_OPEN);
    HttpStore *store = back_->borrow_http_store();
    if (e != nullptr && store != nullptr && store->assign(hm, false)) e->http = &store->view();
  }
  mg_iobuf_del(&c->recv, 0, static_cast<std::size_t>(n));
  c->is_websocket = 1;
  st->ws->open = true;
  return true;
}

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
  std::snprintf(ws.close_reason, sizeof(ws.close_reason), "%s", reason);
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
    const std::size_t len = std::strlen(ws.close_reason);
    payload[0] = static_cast<unsigned char>(ws.close_code >> 8);
    payload[1] = static_cast<unsigned char>(ws.close_code);
    std::memcpy(payload + 2, ws.close_reason, len);
    send_frame(c, payload, ws.close_code != 0 ? len + 2 : 0, kWsClose, true);
    ws.close_sent = true;
  }
  c->is_draining = 1;
}

void Manager::ws_flush_pong(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (!ws.pong_pending || c->send.len >= kPongQueueLimit) return;
  ws.pong_pending = false;
  if (!ws.close_sent) send_frame(c, ws.pong, ws.pong_len, kWsPong, true);
}

int Manager::ws_send(mg_connection *c, const void *buf, std::size_t len, int op) {
  ConnState *st = state_of(c);
  if (!st->ws || !c->is_websocket) return fail(MGFFI_ERR_STATE, "not a WebSocket connection");
  WsState &ws = *st->ws;
  if (!ws.open) return fail(MGFFI_ERR_STATE, "the WebSocket handshake is not complete");
  if (ws.close_sent) return fail(MGFFI_ERR_STATE, "the WebSocket is closing");
  if (op < kWsClose) {  // control frames are never refused for a full queue
    const int room = check_send_room(c, st);
    if (room != MGFFI_OK) return room;
  }
  if (!send_frame(c, buf, len, op, true)) return fail(MGFFI_ERR_NOMEM, "out of memory");
  if (op == kWsClose) ws.close_sent = true;
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
