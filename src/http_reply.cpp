// HTTP replies to the pending request of an accepted connection: whole or
// chunked (HTTP/1.0: a body ended by closing); files are http_static.cpp's.
// One place decides the Connection header a reply gets.
#include <cstdio>
#include <cstring>

#include "manager.hpp"
#include "status_text.hpp"

namespace mgffi {

namespace {

// RFC 9110 6.4.1, 15.3.5, 15.4.5: no content, so no Content-Length.
bool has_no_content(int status) {
  return status < 200 || status == 204 || status == 304;
}

}  // namespace

// The Connection header the glue adds to a reply whose own headers are
// these, or nullptr. The reply's own "Connection: close" closes the
// connection after it, like the client's; either way one Connection header
// goes out.
const char *Manager::own_connection_header(ConnState *st, const char *headers, std::size_t len) {
  HttpRequest &r = st->http;
  const ConnectionHeader h = find_connection_header(headers, len);
  if (h.close) r.keep_alive = false;
  if (h.present) return nullptr;
  if (!r.keep_alive) return "Connection: close\r\n";
  if (r.http10) return "Connection: keep-alive\r\n";
  return nullptr;
}

void Manager::send_status_and_headers(mg_connection *c, ConnState *st, int status,
                                      const char *headers, std::size_t headers_len) {
  char line[96];
  const int n =
      std::snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, status_text(status));
  send_bytes(c, line, static_cast<std::size_t>(n));
  if (headers_len > 0) send_bytes(c, headers, headers_len);
  if (const char *own = own_connection_header(st, headers, headers_len)) {
    send_bytes(c, own, std::strlen(own));
  }
}

// The reply is complete: on to the next request once this one has been
// received whole (a streamed body still arriving is read to its end first:
// closing with unread bytes would reset the connection, and the client
// might lose the reply).
void Manager::finish_reply(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  r.out = HttpRequest::Out::kDone;
  if (r.in == HttpRequest::In::kComplete) http_next_request(c, st);
}

static int no_request(Manager &m) {
  return m.fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
}

int Manager::http_reply(mg_connection *c, int status, const char *headers, std::size_t headers_len,
                        const char *body, std::size_t body_len) {
  ConnState *st = state_of(c);
  if (st->http.out != HttpRequest::Out::kPending) return no_request(*this);
  if (status < 200)
    return fail(MGFFI_ERR_ARG, "an informational (1xx) status cannot end a request");
  const bool no_content = has_no_content(status);
  if (no_content && body_len > 0) {
    return fail(MGFFI_ERR_ARG, "a " + std::to_string(status) + " reply has no body");
  }
  send_status_and_headers(c, st, status, headers, headers_len);
  if (no_content) {
    send_bytes(c, "\r\n", 2);
  } else {
    char cl[48];
    const int n = std::snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", body_len);
    send_bytes(c, cl, static_cast<std::size_t>(n));
    if (body_len > 0 && !st->http.head) send_bytes(c, body, body_len);
  }
  finish_reply(c, st);
  return MGFFI_OK;
}

int Manager::http_begin_chunked(mg_connection *c, int status, const char *headers,
                                std::size_t headers_len) {
  ConnState *st = state_of(c);
  HttpRequest &r = st->http;
  if (r.out != HttpRequest::Out::kPending) return no_request(*this);
  if (has_no_content(status)) {
    return fail(MGFFI_ERR_ARG, "a " + std::to_string(status) + " reply has no body");
  }
  // HTTP/1.0 has no chunked coding: the body ends with the connection.
  if (r.http10) r.keep_alive = false;
  send_status_and_headers(c, st, status, headers, headers_len);
  if (r.http10) {
    send_bytes(c, "\r\n", 2);
  } else {
    send_bytes(c, "Transfer-Encoding: chunked\r\n\r\n", 30);
  }
  r.out = HttpRequest::Out::kChunked;
  return MGFFI_OK;
}

int Manager::http_write_chunk(mg_connection *c, const char *buf, std::size_t len) {
  ConnState *st = state_of(c);
  HttpRequest &r = st->http;
  if (r.out != HttpRequest::Out::kChunked)
    return fail(MGFFI_ERR_STATE, "no chunked response is open");
  if (len == 0 || r.head) return MGFFI_OK;  // an empty chunk would end the response
  const int room = check_send_room(c, st);
  if (room != MGFFI_OK) return room;
  if (r.http10) {
    send_bytes(c, buf, len);
    return MGFFI_OK;
  }
  char size_line[24];
  const int n = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
  send_bytes(c, size_line, static_cast<std::size_t>(n));
  send_bytes(c, buf, len);
  send_bytes(c, "\r\n", 2);
  return MGFFI_OK;
}

int Manager::http_end_chunked(mg_connection *c) {
  ConnState *st = state_of(c);
  HttpRequest &r = st->http;
  if (r.out != HttpRequest::Out::kChunked)
    return fail(MGFFI_ERR_STATE, "no chunked response is open");
  if (!r.head && !r.http10) send_bytes(c, "0\r\n\r\n", 5);
  finish_reply(c, st);
  return MGFFI_OK;
}

}  // namespace mgffi
