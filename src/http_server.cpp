// HTTP/1.1 requests on accepted connections, parsed by the glue itself as
// they arrive: the head is scanned once (not once per read), checked
// (Mongoose's mg_http_parse plus RFC 9112's rules it leaves out) and
// copied; the body goes straight from the receive buffer into the request's
// store (sized up front from Content-Length) or, when streamed, to Lua; a
// chunked body is decoded once, incrementally. Every refusal is an answer
// (400, 408, 413, 417, 431, 505) and a close, never a silent drop.
#include <strings.h>

#include <cstdio>
#include <cstring>

#include "manager.hpp"
#include "status_text.hpp"

namespace mgffi {

namespace {

// A request waits for its reply with this much of the next one buffered:
// the connection is not read further until the reply.
constexpr std::size_t kPipelineHoldBytes = 65536;

bool header_equals(const mg_str *value, const char *expected) {
  return value != nullptr && mg_strcasecmp(*value, mg_str(expected)) == 0;
}

}  // namespace

void Manager::on_http_read(mg_connection *c, ConnState *st) {
  if (wants(st, MGFFI_EV_READ)) {
    mgffi_event *e = record(c, st, MGFFI_EV_READ);
    if (e != nullptr) e->value = static_cast<std::int64_t>(c->recv.len);
  }
  http_input(c, st);
}

// Parses what recv holds, request after request, until it needs more bytes
// or a request waits for its reply.
void Manager::http_input(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  for (;;) {
    switch (r.in) {
      case HttpRequest::In::kRejected: c->recv.len = 0; return;
      case HttpRequest::In::kWebSocket: return;
      case HttpRequest::In::kComplete:
        if (c->recv.len >= kPipelineHoldBytes) set_hold(c, st, kHoldPipeline, true);
        return;
      case HttpRequest::In::kHead:
        if (!http_start(c, st)) return;
        break;
      case HttpRequest::In::kBody:
        if (!http_body(c, st)) return;
        break;
      case HttpRequest::In::kChunked:
        if (!http_chunked(c, st)) return;
        break;
    }
  }
}

// A head: complete, checked, copied and removed from recv (true), or not
// there yet or refused (false).
bool Manager::http_start(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  // RFC 9112 2.2: empty lines before a request line are ignored.
  std::size_t blank = 0;
  while (blank < c->recv.len) {
    if (c->recv.buf[blank] == '\n') {
      blank++;
    } else if (c->recv.buf[blank] == '\r' && blank + 1 < c->recv.len &&
               c->recv.buf[blank + 1] == '\n') {
      blank += 2;
    } else {
      break;
    }
  }
  if (blank > 0) {
    mg_iobuf_del(&c->recv, 0, blank);
    r.scanned = 0;
  }
  if (c->recv.len == 0) return false;
  if (st->request_started_ms == 0) st->request_started_ms = poll_now_;
  const std::uint64_t max_head = st->limit(MGFFI_LIMIT_MAX_HEADER_SIZE);
  const long head_len = find_head_end(c->recv.buf, c->recv.len, &r.scanned);
  if (head_len < 0) {
    reject(c, st, 400, "invalid byte in the request head");
    return false;
  }
  if (head_len == 0) {
    if (max_head != 0 && c->recv.len > max_head) {
      reject(c, st, 431, "request head larger than the limit");
    }
    return false;
  }
  if (max_head != 0 && static_cast<std::uint64_t>(head_len) > max_head) {
    reject(c, st, 431, "request head larger than the limit");
    return false;
  }
  mg_http_message hm;
  const char *head = reinterpret_cast<const char *>(c->recv.buf);
  if (mg_http_parse(head, static_cast<std::size_t>(head_len), &hm) <= 0) {
    reject(c, st, 400, "malformed HTTP request");
    return false;
  }
  // Mongoose keeps MG_MAX_HTTP_HEADERS and ignores the rest: count lines.
  std::size_t lines = 0;
  for (long i = 0; i < head_len; i++) lines += head[i] == '\n';
  const std::uint64_t max_headers = st->limit(MGFFI_LIMIT_MAX_HEADERS);
  if (lines >= 2 &&
      ((max_headers != 0 && lines - 2 > max_headers) || lines - 2 > MG_MAX_HTTP_HEADERS)) {
    reject(c, st, 431, "too many header lines");
    return false;
  }
  const HeadVerdict verdict = check_request_head(hm);
  if (verdict.status != 0) {
    reject(c, st, verdict.status, verdict.reason);
    return false;
  }
  // Framing: mg_http_parse has refused Content-Length with
  // Transfer-Encoding, and repeated ones.
  bool chunked = false;
  std::uint64_t length = 0;
  if (mg_str *te = mg_http_get_header(&hm, "Transfer-Encoding")) {
    if (mg_strcasecmp(*te, mg_str("chunked")) != 0) {
      reject(c, st, 400, "unsupported Transfer-Encoding");
      return false;
    }
    chunked = true;
  } else if (mg_str *cl = mg_http_get_header(&hm, "Content-Length")) {
    if (!parse_content_length(*cl, &length)) {
      reject(c, st, 400, "invalid Content-Length");
      return false;
    }
  }
  r.http10 = hm.proto.buf[7] == '0';
  mg_str *connection = mg_http_get_header(&hm, "Connection");
  r.keep_alive =
      r.http10 ? header_equals(connection, "keep-alive") : !header_equals(connection, "close");
  r.head = mg_strcasecmp(hm.method, mg_str("HEAD")) == 0;
  // Expect: 100-continue (curl sends it with bodies over 1 MiB, then waits
  // a second): once the head has passed the limits, the body is asked for.
  // Any other expectation gets 417 (RFC 9110 10.1.1); HTTP/1.0's is ignored.
  bool send_continue = false;
  if (mg_str *expect = mg_http_get_header(&hm, "Expect"); expect != nullptr && !r.http10) {
    if (mg_strcasecmp(*expect, mg_str("100-continue")) != 0) {
      reject(c, st, 417, "unsupported Expect header");
      return false;
    }
    send_continue = chunked || c->recv.len < static_cast<std::size_t>(head_len) + length;
  }
  const std::uint64_t threshold = st->limit(MGFFI_LIMIT_STREAM_THRESHOLD);
  const std::uint64_t max_body = st->limit(MGFFI_LIMIT_MAX_BODY);
  r.streaming = !chunked && threshold != 0 && length > threshold;
  if (!chunked && !r.streaming && max_body != 0 && length > max_body) {
    reject(c, st, 413, "request body larger than the limit");
    return false;
  }
  if (!r.store) r.store = take_store();
  const std::size_t hint = chunked || r.streaming ? 0 : static_cast<std::size_t>(length);
  if (!r.store || !r.store->begin(hm, hint)) {
    mg_error(c, "out of memory");
    return false;
  }
  mg_iobuf_del(&c->recv, 0, static_cast<std::size_t>(head_len));  // hm is stale from here
  r.scanned = 0;
  r.received = 0;
  r.trailer_bytes = 0;
  r.remaining = length;
  if (send_continue) {
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    send_bytes(c, kContinue, sizeof(kContinue) - 1);
  }
  if (r.streaming) {
    r.store->finish(length);
    r.out = HttpRequest::Out::kPending;
    if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_HDRS)) {
      e->flags |= MGFFI_F_STREAMING;
      e->http = &r.store->view();
    }
  }
  if (chunked) {
    r.in = HttpRequest::In::kChunked;
    r.chunks.reset();
  } else if (length > 0) {
    r.in = HttpRequest::In::kBody;
  } else {
    http_complete(c, st);
  }
  return true;
}

// A Content-Length body: what has arrived of it.
bool Manager::http_body(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  std::size_t n = c->recv.len;
  if (n > r.remaining) n = static_cast<std::size_t>(r.remaining);
  if (n == 0) return false;
  if (r.streaming) {
    if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_BODY)) {
      e->value = static_cast<std::int64_t>(n);
      if (!back_->attach_data(c->recv.buf, n)) mg_error(c, "out of memory");
    }
  } else if (!r.store->append_body(c->recv.buf, n)) {
    mg_error(c, "out of memory");
    return false;
  }
  mg_iobuf_del(&c->recv, 0, n);
  r.remaining -= n;
  r.received += n;
  if (r.remaining > 0) return false;
  http_complete(c, st);
  return true;
}

// A chunked body arriving: what the decoder makes of recv. Buffered, its
// decoded size counts against max_body; past stream_threshold (when set) it
// turns into a streamed body. Decoded data of one read goes to Lua as one
// HTTP_BODY event, however small its chunks.
bool Manager::http_chunked(mg_connection *c, ConnState *st) {
  struct Sink : ChunkDecoder::Sink {
    Manager &m;
    mg_connection *c;
    ConnState *st;
    std::size_t streamed_from = 0;  // arena offset of this read's streamed data
    std::size_t streamed = 0;
    bool refused = false;
    Sink(Manager &m_, mg_connection *c_, ConnState *st_) : m(m_), c(c_), st(st_) {}
    bool data(const char *p, std::size_t n) override {
      HttpRequest &r = st->http;
      r.received += n;
      if (!r.streaming) {
        const std::uint64_t threshold = st->limit(MGFFI_LIMIT_STREAM_THRESHOLD);
        const std::uint64_t max_body = st->limit(MGFFI_LIMIT_MAX_BODY);
        if (threshold != 0 && r.received > threshold) {
          if (!m.http_to_streaming(c, st)) return refuse();
        } else if (max_body != 0 && r.received > max_body) {
          m.reject(c, st, 413, "chunked request body larger than the limit");
          return refuse();
        } else {
          return r.store->append_body(p, n) || refuse();
        }
      }
      return m.stream_bytes(c, st, p, n, &streamed_from, &streamed) || refuse();
    }
    bool trailer(const char *p, std::size_t n) override {
      HttpRequest &r = st->http;
      r.trailer_bytes += n;
      const std::uint64_t max_head = st->limit(MGFFI_LIMIT_MAX_HEADER_SIZE);
      if (max_head != 0 && r.trailer_bytes > max_head) {
        m.reject(c, st, 431, "trailer fields larger than the limit");
        return refuse();
      }
      return r.store->append_trailers(p, n) || refuse();
    }
    bool refuse() {
      refused = true;
      return false;
    }
  } sink(*this, c, st);

  HttpRequest &r = st->http;
  std::size_t used = 0;
  const ChunkDecoder::Status status =
      r.chunks.feed(reinterpret_cast<const char *>(c->recv.buf), c->recv.len, sink, &used);
  if (status == ChunkDecoder::kError) {
    if (!sink.refused) reject(c, st, 400, "invalid chunked body");
    if (r.in != HttpRequest::In::kRejected) mg_error(c, "out of memory");
    return false;
  }
  mg_iobuf_del(&c->recv, 0, used);
  if (status == ChunkDecoder::kNeedMore) return false;
  http_complete(c, st);
  return true;
}

// Streamed body bytes of this read, appended to one HTTP_BODY event.
bool Manager::stream_bytes(mg_connection *c, ConnState *st, const char *p, std::size_t n,
                           std::size_t *event_index, std::size_t *streamed) {
  if (*streamed == 0 || !back_->extend_last_data(*event_index, p, n)) {
    mgffi_event *e = record(c, st, MGFFI_EV_HTTP_BODY);
    if (e == nullptr || !back_->attach_data(p, n)) return false;
    *event_index = back_->size() - 1;
    *streamed = 0;
  }
  *streamed += n;
  back_->set_value(*event_index, static_cast<std::int64_t>(*streamed));
  return true;
}

// A chunked body passed stream_threshold: from now on it goes to Lua as it
// arrives, starting with what was buffered.
bool Manager::http_to_streaming(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  r.streaming = true;
  r.store->finish(0);
  r.out = HttpRequest::Out::kPending;
  if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_HDRS)) {
    e->flags |= MGFFI_F_STREAMING;
    e->http = &r.store->view();
  }
  const std::size_t buffered = r.store->body_size();
  if (buffered > 0) {
    mgffi_event *e = record(c, st, MGFFI_EV_HTTP_BODY);
    if (e == nullptr) return false;
    e->value = static_cast<std::int64_t>(buffered);
    if (!back_->attach_data(r.store->view().body.ptr, buffered)) return false;
    r.store->drop_body();
  }
  return true;
}

void Manager::http_complete(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  st->request_started_ms = 0;
  r.in = HttpRequest::In::kComplete;
  if (!r.store->finish(r.received)) {
    reject(c, st, 400, "invalid trailer field");
    return;
  }
  if (r.streaming) {
    if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_BODY_END)) e->http = &r.store->view();
  } else {
    r.out = HttpRequest::Out::kPending;
    if (wants(st, MGFFI_EV_HTTP_MSG)) {
      if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_MSG)) e->http = &r.store->view();
    }
  }
  if (r.out == HttpRequest::Out::kDone) http_next_request(c, st);  // answered before its end
}

// Both the request and its reply are done: on to the next request, or the
// end of the connection.
void Manager::http_next_request(mg_connection *c, ConnState *st) {
  HttpRequest &r = st->http;
  if (!r.keep_alive) {
    r.in = HttpRequest::In::kRejected;  // anything more is dropped
    c->is_draining = 1;
    return;
  }
  r.in = HttpRequest::In::kHead;
  r.out = HttpRequest::Out::kNone;
  r.streaming = r.head = r.http10 = false;
  r.keep_alive = true;
  r.scanned = 0;
  r.remaining = r.received = 0;
  r.trailer_bytes = 0;
  r.chunks.reset();
  if (st->hold & kHoldPipeline) set_hold(c, st, kHoldPipeline, false);
  if (r.store) {
    try {
      idle_stores_.push_back(st->id);  // its views stay valid until the next poll
    } catch (const std::bad_alloc &) {
      // Kept by the connection until its next request.
    }
  }
  if (c->recv.len > 0) mark_input_pending(st);
}

void Manager::reject(mg_connection *c, ConnState *st, int status, const char *reason) {
  HttpRequest &r = st->http;
  const bool can_answer =
      r.out == HttpRequest::Out::kNone || (r.out == HttpRequest::Out::kPending && r.streaming);
  r.in = HttpRequest::In::kRejected;
  r.out = HttpRequest::Out::kDone;  // a late reply from Lua now fails cleanly
  st->request_started_ms = 0;
  c->recv.len = 0;
  if (can_answer) {
    char head[192];
    const char *text = status_text(status);
    const int body_len = std::snprintf(nullptr, 0, "%d %s\n", status, text);
    const int n =
        std::snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %d\r\n\r\n%d %s\n",
                      status, text, body_len, status, text);
    if (n > 0) {
      send_bytes(c, head, static_cast<std::size_t>(n) < sizeof(head) ? n : sizeof(head) - 1);
    }
    c->is_draining = 1;
  } else {
    c->is_closing = 1;  // a reply has begun: all that is left is to cut it
  }
  if (mgffi_event *e = record(c, st, MGFFI_EV_HTTP_REJECTED)) {
    e->value = status;
    back_->attach_data(reason, std::strlen(reason));
  }
}

// Timeouts of an accepted HTTP connection, checked every poll: a request
// not received in time (slowloris, a trickled body) or a body that stopped
// arriving for idle_timeout gets 408; a connection idle between requests
// (nothing read or written) is closed.
void Manager::http_timeouts(mg_connection *c, ConnState *st) {
  if (c->is_draining) return;
  HttpRequest &r = st->http;
  const std::uint64_t now = poll_now_;
  const std::uint64_t request = st->limit(MGFFI_LIMIT_REQUEST_TIMEOUT_MS);
  if (request != 0 && st->request_started_ms != 0) {
    const std::uint64_t rate = st->limit(MGFFI_LIMIT_MIN_BODY_RATE);
    const std::uint64_t allowed = request + (rate != 0 ? r.received * 1000 / rate : 0);
    if (now - st->request_started_ms > allowed) {
      reject(c, st, 408,
             r.in == HttpRequest::In::kHead ? "request not received in time"
                                            : "request body not received in time");
      return;
    }
  }
  const std::uint64_t idle = st->limit(MGFFI_LIMIT_IDLE_TIMEOUT_MS);
  if (idle == 0) return;
  if (r.in == HttpRequest::In::kBody || r.in == HttpRequest::In::kChunked) {
    // A body that stopped arriving (nginx's client_body_timeout).
    if (now - st->last_read_ms > idle) reject(c, st, 408, "request body stopped arriving");
    return;
  }
  if (r.in != HttpRequest::In::kHead || r.out != HttpRequest::Out::kNone ||
      st->request_started_ms != 0) {
    return;
  }
  const std::uint64_t last =
      st->last_read_ms > st->last_write_ms ? st->last_read_ms : st->last_write_ms;
  if (now - last > idle) {
    // A peer that stopped reading what we send counts as idle too.
    if (c->send.len > 0) {
      c->is_closing = 1;
    } else {
      c->is_draining = 1;
    }
  }
}

}  // namespace mgffi
