// WebSocket handshakes (RFC 6455 section 4), both sides: the server's 101
// to an HTTP request, the client's request (sent once connected) and its
// check of the 101, and permessage-deflate's negotiation (ws_deflate.cpp).
#include <cstdio>
#include <cstring>
#include <new>

#include "manager.hpp"
#include "pool.hpp"

namespace mgffi {

namespace {

constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
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

// Every value of header name, joined with ", " (a list may be split over
// several header lines).
std::string all_values(mg_http_message &hm, const char *name) {
  std::string joined;
  for (const mg_http_header &h : hm.headers) {
    if (h.name.len == 0) break;
    if (mg_strcasecmp(h.name, mg_str(name)) != 0) continue;
    if (!joined.empty()) joined += ", ";
    joined.append(h.value.buf, h.value.len);
  }
  return joined;
}

}  // namespace

std::unique_ptr<WsState> Manager::take_ws(bool client) {
  const bool recycled = !free_ws_.empty();
  std::unique_ptr<WsState> ws = take_from(free_ws_);
  if (recycled) {  // reset, keeping the receiver's buffer
    WsReceiver rx = std::move(ws->rx);
    rx.reset();
    *ws = WsState();
    ws->rx = std::move(rx);
  }
  if (ws) {
    ws->client = client;
    ws->control_refill_ms = mg_millis();
  }
  return ws;
}

// The receiver's rules and the control budget for a WebSocket's limits and
// extensions.
void Manager::ws_configure(ConnState *st) {
  WsState &ws = *st->ws;
  WsReceiver::Config config;
  config.expect_masked = !ws.client;
  config.allow_rsv1 = ws.deflate.active;
  config.max_message = st->limit(MGFFI_LIMIT_WS_MAX_MESSAGE);
  ws.rx.configure(config);
  ws.control_tokens = 2 * st->limit(MGFFI_LIMIT_WS_CONTROL_RATE) * 1000;
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
  try {
    // Kept here rather than as a Lua string on every idle WebSocket (see
    // mgffi_ws_request_head).
    const mgffi_str &head = r.store->view().head;
    ws->request_head.assign(head.ptr, head.len);
  } catch (const std::bad_alloc &) {
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  std::string extension;
  if (st->deflate) {
    const std::string offers = all_values(hm, "Sec-WebSocket-Extensions");
    negotiate_deflate(mg_str_n(offers.data(), offers.size()), *st->deflate, &ws->deflate,
                      &extension);
  }
  char accept[32];
  accept_for(*key, accept);
  char head[192];
  const int n = std::snprintf(head, sizeof(head),
                              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                              accept);
  send_bytes(c, head, static_cast<std::size_t>(n));
  if (!extension.empty()) {
    const std::string line = "Sec-WebSocket-Extensions: " + extension + "\r\n";
    send_bytes(c, line.data(), line.size());
  }
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
    if (mgffi_event *e = record(c, st, MGFFI_EV_WS_OPEN)) {
      e->http = &r.store->view();
      e->value = st->ws->deflate.active ? 1 : 0;
      back_->attach_data(extension.data(), extension.size());
    }
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
  ws->hello.reset(new (std::nothrow) WsClientHello());
  if (!ws->hello) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  accept_for(mg_str(key), ws->hello->accept);
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
  // The rest (and the extension offer, which mgffi_ws_set_deflate may still
  // change) is added once connected.
  std::string &request = ws->hello->request;
  request.assign(head, static_cast<std::size_t>(n));
  request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
  request += std::string("Sec-WebSocket-Key: ") + key + "\r\n";
  if (extra_len > 0) request.append(extra, extra_len);
  st->ws = std::move(ws);
  ws_configure(st);
  *id = c->id;
  return MGFFI_OK;
}

// MG_EV_CONNECT of a WebSocket client: its handshake goes out (after TLS's,
// which Mongoose runs first).
void Manager::ws_send_request(mg_connection *c, ConnState *st) {
  WsState &ws = *st->ws;
  if (!ws.hello || ws.hello->request.empty()) return;
  std::string &request = ws.hello->request;
  if (st->deflate && st->deflate->enabled) {
    request += "Sec-WebSocket-Extensions: " + deflate_offer(*st->deflate) + "\r\n";
  }
  request += "\r\n";
  send_bytes(c, request.data(), request.size());
  std::string().swap(request);
}

// The client's wait for the server's 101. True once it has arrived.
bool Manager::ws_client_handshake(mg_connection *c, ConnState *st) {
  const int n = mg_http_get_request_len(c->recv.buf, c->recv.len);
  if (n == 0 && c->recv.len < kMaxHandshakeResponse) return false;
  mg_http_message hm;
  const char *why = nullptr;
  std::string extensions;  // the 101's Sec-WebSocket-Extensions
  WsState &ws = *st->ws;
  if (n <= 0 || mg_http_parse(reinterpret_cast<const char *>(c->recv.buf), n, &hm) <= 0) {
    why = "WebSocket handshake failed: not an HTTP response";
  } else if (mg_http_status(&hm) != 101) {
    why = "WebSocket handshake failed: the server did not answer 101";
  } else if (!has_token(mg_http_get_header(&hm, "Upgrade"), "websocket") ||
             !has_token(mg_http_get_header(&hm, "Connection"), "upgrade")) {
    why = "WebSocket handshake failed: no Upgrade: websocket in the 101";
  } else {
    mg_str *accept = mg_http_get_header(&hm, "Sec-WebSocket-Accept");
    extensions = all_values(hm, "Sec-WebSocket-Extensions");
    static const DeflateConfig kNone;
    if (accept == nullptr || !ws.hello || mg_strcmp(*accept, mg_str(ws.hello->accept)) != 0) {
      why = "WebSocket handshake failed: wrong Sec-WebSocket-Accept";
    } else if (!accept_deflate_response(mg_str_n(extensions.data(), extensions.size()),
                                        st->deflate ? *st->deflate : kNone, &ws.deflate)) {
      why = "WebSocket handshake failed: an extension that was not offered or cannot be honoured";
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
    if (e != nullptr && store != nullptr && store->assign(hm, false)) {
      e->http = &store->view();
      e->value = ws.deflate.active ? 1 : 0;
      if (ws.deflate.active) back_->attach_data(extensions.data(), extensions.size());
    }
  }
  mg_iobuf_del(&c->recv, 0, static_cast<std::size_t>(n));
  c->is_websocket = 1;
  ws.open = true;
  ws.hello.reset();
  ws_configure(st);
  return true;
}

}  // namespace mgffi
