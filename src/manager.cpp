#include "manager.hpp"

#include <netinet/in.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "status_text.hpp"

namespace mgffi {

namespace {

// Mongoose's HTTP protocol handler (static in mongoose.c). Taken from the
// first HTTP connection so that a connection detached for body streaming
// can be handed back to it.
mg_event_handler_t g_http_protocol_handler = nullptr;

#define MGFFI_SAME_EVENT(name) (static_cast<int>(MGFFI_EV_##name) == static_cast<int>(MG_EV_##name))
static_assert(MGFFI_SAME_EVENT(ERROR) && MGFFI_SAME_EVENT(OPEN) && MGFFI_SAME_EVENT(POLL) &&
                  MGFFI_SAME_EVENT(RESOLVE) && MGFFI_SAME_EVENT(CONNECT) &&
                  MGFFI_SAME_EVENT(ACCEPT) && MGFFI_SAME_EVENT(TLS_HS) && MGFFI_SAME_EVENT(READ) &&
                  MGFFI_SAME_EVENT(WRITE) && MGFFI_SAME_EVENT(CLOSE) &&
                  MGFFI_SAME_EVENT(HTTP_HDRS) && MGFFI_SAME_EVENT(HTTP_MSG) &&
                  MGFFI_SAME_EVENT(WS_OPEN) && MGFFI_SAME_EVENT(WS_MSG) &&
                  MGFFI_SAME_EVENT(WS_CTL) && MGFFI_SAME_EVENT(MQTT_CMD) &&
                  MGFFI_SAME_EVENT(MQTT_MSG) && MGFFI_SAME_EVENT(MQTT_OPEN) &&
                  MGFFI_SAME_EVENT(SNTP_TIME) && MGFFI_SAME_EVENT(WAKEUP) &&
                  MGFFI_SAME_EVENT(MDNS_REQ) && MGFFI_SAME_EVENT(MDNS_RESP) &&
                  MGFFI_SAME_EVENT(MODBUS_REQ) && static_cast<int>(MG_EV_USER) < 64,
              "mgffi_event_type must mirror Mongoose's enum mg_event");
static_assert(MG_MAX_HTTP_HEADERS <= MGFFI_MAX_HEADERS, "MGFFI_MAX_HEADERS too small");

void copy_addr(const mg_addr &from, mgffi_addr *to) {
  std::memcpy(to->ip, from.addr.ip, sizeof(to->ip));
  to->port = mg_ntohs(from.port);
  to->is_ip6 = from.is_ip6 ? 1 : 0;
  to->reserved = 0;
}

std::uint32_t flags_of(const mg_connection *c) {
  std::uint32_t f = 0;
  if (c->is_listening) f |= MGFFI_F_LISTENER;
  if (c->is_client) f |= MGFFI_F_CLIENT;
  if (c->is_accepted) f |= MGFFI_F_ACCEPTED;
  if (c->is_udp) f |= MGFFI_F_UDP;
  if (c->is_websocket) f |= MGFFI_F_WEBSOCKET;
  if (c->is_tls) f |= MGFFI_F_TLS;
  return f;
}

bool header_equals(const mg_str *value, const char *expected) {
  return value != nullptr && mg_strcasecmp(*value, mg_str(expected)) == 0;
}

bool is_http10(const mg_http_message *hm) {
  return hm->proto.len == 8 && strncasecmp(hm->proto.buf, "HTTP/1.0", 8) == 0;
}

// Whether the connection must close once this request is answered.
bool wants_close(mg_http_message *hm) {
  mg_str *connection = mg_http_get_header(hm, "Connection");
  if (is_http10(hm)) return !header_equals(connection, "keep-alive");
  return header_equals(connection, "close");
}

constexpr std::uint64_t kDefaultMaxBody = MGFFI_DEFAULT_MAX_BODY;
constexpr std::size_t kMaxDatagram = 65536;       // above any UDP payload
constexpr std::size_t kMaxChunkSizeDigits = 16;   // leading zeros included
constexpr std::size_t kKeptSendBytes = 65536;     // a drained send buffer kept for reuse
constexpr std::size_t kMaxFreeStates = 1024;      // recycled connection states kept
constexpr std::size_t kKeptRequestBytes = 65536;  // request buffer a recycled state keeps

// Mongoose's log output goes to stderr, and nowhere at level "none": its
// hex dumps of bad requests are printed regardless of the level otherwise,
// and stdout belongs to the application.
void log_to_stderr(char ch, void *) {
  if (mg_log_level > MG_LL_NONE) std::fputc(ch, stderr);
}

}  // namespace

Manager::Manager() {
  mg_log_set_fn(log_to_stderr, nullptr);
  mg_mgr_init(&mgr_);
  mgr_.userdata = this;
  conns_.reserve(64);
}

Manager::~Manager() {
  freeing_ = true;
  mg_mgr_free(&mgr_);  // fires CLOSE for every connection while we still exist
}

int Manager::fail(int code, const std::string &message) {
  try {
    last_error_ = message;
  } catch (...) {
    // Keep the previous text; the code still tells what failed.
  }
  return code;
}

std::uint32_t Manager::default_mask(int protocol) {
  std::uint32_t common =
      MGFFI_MASK(MGFFI_EV_ERROR) | MGFFI_MASK(MGFFI_EV_CLOSE) | MGFFI_MASK(MGFFI_EV_CONNECT);
  if (protocol == MGFFI_PROTO_HTTP) {
    return common | MGFFI_MASK(MGFFI_EV_HTTP_MSG) | MGFFI_MASK(MGFFI_EV_WS_OPEN) |
           MGFFI_MASK(MGFFI_EV_WS_MSG) | MGFFI_MASK(MGFFI_EV_WS_CTL);
  }
  return common | MGFFI_MASK(MGFFI_EV_ACCEPT) | MGFFI_MASK(MGFFI_EV_READ);
}

std::unique_ptr<ConnState> Manager::take_state() {
  if (!free_states_.empty()) {
    std::unique_ptr<ConnState> st = std::move(free_states_.back());
    free_states_.pop_back();
    // Keep the request buffer's capacity: reset everything else.
    HttpStore keep = std::move(st->request);
    st->reset();
    st->request = std::move(keep);
    return st;
  }
  return std::unique_ptr<ConnState>(new (std::nothrow) ConnState());
}

int Manager::poll(int timeout_ms) {
  // States of connections closed during the previous poll may still be
  // referenced by the events Lua has just read; only now are they free.
  // Recycled states keep a request buffer of ordinary size; one that held a
  // large body gives it back, and past a cap states are freed, so memory
  // does not stay at the peak of (connections x max_body).
  try {
    for (auto &st : closed_states_) {
      if (free_states_.size() >= kMaxFreeStates) break;  // the rest are freed below
      if (st->request.capacity() > kKeptRequestBytes) st->request.release();
      free_states_.push_back(std::move(st));
    }
  } catch (const std::bad_alloc &) {
    // Dropping them frees the memory instead of recycling it.
  }
  closed_states_.clear();
  for (std::uint64_t id : throttled_) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    it->second.second->throttled = false;
    if (!it->second.second->reading_paused) it->second.first->is_full = 0;
  }
  throttled_.clear();
  if (!paused_.empty()) apply_paused_reads();
  poll_now_ = mg_millis();
  mg_mgr_poll(&mgr_, timeout_ms < 0 ? 0 : timeout_ms);
  back_->finalize();
  std::swap(front_, back_);
  back_->clear();
  return static_cast<int>(front_->size());
}

namespace {

// A request that waits in recv for Mongoose to parse it at the next poll
// (pipelined behind a reply). A partial head, or a body still arriving,
// waits for the kernel instead: its deadlines below must still be armed.
bool request_ready_to_parse(const mg_connection *c, const ConnState *st) {
  return st->protocol == MGFFI_PROTO_HTTP && c->is_accepted && !c->is_resp && !c->is_websocket &&
         c->recv.len > 0 && !st->headers_seen &&
         mg_http_get_request_len(c->recv.buf, c->recv.len) != 0;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// What the chunks of a request body buffered so far look like.
struct ChunkScan {
  enum { kFine, kBroken, kSplitSizeLine } verdict = kFine;
  std::size_t tail = 0;  // kSplitSizeLine: bytes of the unfinished size line
};

// Walks the chunks of a request body buffered so far. kBroken: framing
// Mongoose would answer by closing without a word (a size that is not hex,
// overflows (Mongoose takes 31 bits) or lacks its CRLF; data not followed
// by CRLF). kSplitSizeLine: the buffer ends inside a size line of 3 bytes
// or more, which Mongoose 7.23 takes for a broken chunk although more may
// follow. Anything else incomplete is fine.
ChunkScan scan_chunks(const char *p, std::size_t len) {
  ChunkScan scan;
  std::size_t i = 0;
  while (i < len) {
    std::size_t j = i;
    std::uint64_t size = 0;
    for (int v; j < len && (v = hex_value(p[j])) >= 0; j++) {
      size = size * 16 + static_cast<unsigned>(v);
      if (size > 0x7fffffff || j - i >= kMaxChunkSizeDigits) {
        scan.verdict = ChunkScan::kBroken;
        return scan;
      }
    }
    if (j == len || (j + 1 == len && p[j] == '\r')) {  // the size line goes on
      if (len - i >= 3) {
        scan.verdict = ChunkScan::kSplitSizeLine;
        scan.tail = len - i;
      }
      return scan;
    }
    if (j == i || p[j] != '\r' || p[j + 1] != '\n') {
      scan.verdict = ChunkScan::kBroken;
      return scan;
    }
    if (size == 0) return scan;  // the last chunk; what follows is Mongoose's
    const std::size_t data = j + 2;
    if (len - data < size + 2) return scan;  // the data goes on in the next read
    if (p[data + size] != '\r' || p[data + size + 1] != '\n') {
      scan.verdict = ChunkScan::kBroken;
      return scan;
    }
    i = data + size + 2;
  }
  return scan;
}

}  // namespace

namespace {

// A socket address as Mongoose keeps it (bytes and port in network order).
void from_sockaddr(const sockaddr_storage &sa, mg_addr *out) {
  if (sa.ss_family == AF_INET6) {
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&sa);
    std::memcpy(out->addr.ip, &sin6->sin6_addr, 16);
    out->port = sin6->sin6_port;
    out->is_ip6 = true;
  } else if (sa.ss_family == AF_INET) {
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&sa);
    std::memset(out->addr.ip, 0, sizeof(out->addr.ip));
    std::memcpy(out->addr.ip, &sin->sin_addr, 4);
    out->port = sin->sin_port;
    out->is_ip6 = false;
  }
}

}  // namespace

// One datagram to c->rem, sent at once. Not mg_send: when the kernel
// refuses a datagram (too large, unreachable), Mongoose marks the whole
// connection closing, and a udp:// listener would stop serving everyone
// because of one bad send. Returns false with errno set.
bool send_datagram(mg_connection *c, const void *buf, std::size_t len) {
  sockaddr_storage to{};
  socklen_t to_len;
  if (c->rem.is_ip6) {
    auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&to);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, c->rem.addr.ip, 16);
    sin6->sin6_port = c->rem.port;
    sin6->sin6_scope_id = c->rem.scope_id;
    to_len = sizeof(*sin6);
  } else {
    auto *sin = reinterpret_cast<sockaddr_in *>(&to);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, c->rem.addr.ip, 4);
    sin->sin_port = c->rem.port;
    to_len = sizeof(*sin);
  }
  int fd = static_cast<int>(reinterpret_cast<std::size_t>(c->fd));
  if (sendto(fd, buf, len, 0, reinterpret_cast<sockaddr *>(&to), to_len) < 0) return false;
  if (c->loc.port == 0) {  // a client's port is chosen by its first send
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &local_len) == 0) {
      from_sockaddr(local, &c->loc);
    }
  }
  return true;
}

bool send_bytes(mg_connection *c, const void *buf, std::size_t len) {
  if (len == 0) return true;
  if (c->is_udp) return send_datagram(c, buf, len);
  const std::size_t need = c->send.len + len;
  if (need > c->send.size) {
    // Geometric growth: many sends queued at once cost O(total), not
    // O(total^2) copying.
    std::size_t target = need > 2 * c->send.size ? need : 2 * c->send.size;
    target = (target + MG_IO_SIZE - 1) / MG_IO_SIZE * MG_IO_SIZE;
    if (!mg_iobuf_resize(&c->send, target)) return false;
  }
  std::memcpy(c->send.buf + c->send.len, buf, len);
  c->send.len = need;
  return true;
}

bool send_ws_frame(mg_connection *c, const void *buf, std::size_t len, int op) {
  unsigned char header[14];
  std::size_t n = 2;
  header[0] = static_cast<unsigned char>(op | 0x80);  // FIN: messages are never fragmented
  if (len < 126) {
    header[1] = static_cast<unsigned char>(len);
  } else if (len < 65536) {
    header[1] = 126;
    header[2] = static_cast<unsigned char>(len >> 8);
    header[3] = static_cast<unsigned char>(len);
    n = 4;
  } else {
    header[1] = 127;
    for (int i = 0; i < 8; i++)
      header[2 + i] = static_cast<unsigned char>(std::uint64_t{len} >> (56 - 8 * i));
    n = 10;
  }
  if (c->is_client) {  // RFC 6455 5.3: a client masks every frame
    header[1] |= 0x80;
    mg_random(header + n, 4);
    n += 4;
  }
  if (!send_bytes(c, header, n)) return false;
  if (!send_bytes(c, buf, len)) return false;
  if (c->is_client) {
    unsigned char *p = c->send.buf + c->send.len - len;
    const unsigned char *mask = header + n - 4;
    for (std::size_t i = 0; i < len; i++) p[i] ^= mask[i & 3];
  }
  return true;
}

int Manager::poll_hint() const {
  int hint = -1;
  const std::uint64_t now = mg_millis();
  for (const auto &entry : conns_) {
    const mg_connection *c = entry.second.first;
    const ConnState *st = entry.second.second.get();
    if (c->is_closing || c->is_draining || (c->send.len > 0 && !st->reading_paused) ||
        st->shutdown_pending || request_ready_to_parse(c, st)) {
      return 0;
    }
    // Mongoose arms write interest for a connect only inside a poll.
    if (c->is_connecting) return 0;
    if (c->is_resolving) hint = hint < 0 || hint > 50 ? 50 : hint;
    // A timeout to enforce: wake up in time for it.
    if (!c->is_listening && (st->idle_timeout_ms != 0 || st->request_timeout_ms != 0)) {
      std::uint64_t due =
          st->idle_timeout_ms != 0 ? st->last_activity_ms + st->idle_timeout_ms : UINT64_MAX;
      if (st->request_timeout_ms != 0 && st->request_started_ms != 0) {
        std::uint64_t r = st->request_started_ms + st->request_timeout_ms;
        if (r < due) due = r;
      }
      if (due != UINT64_MAX) {
        int wait = due <= now ? 1 : static_cast<int>(due - now < 60000 ? due - now + 1 : 60000);
        if (hint < 0 || wait < hint) hint = wait;
      }
    }
  }
  // Mongoose's own timers (DNS timeouts and the like).
  if (mgr_.timers != nullptr) hint = hint < 0 || hint > 100 ? 100 : hint;
  return hint;
}

mg_connection *Manager::find(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.first->is_closing) {
    fail(MGFFI_ERR_NO_CONN, "connection " + std::to_string(id) + " is closed");
    return nullptr;
  }
  return it->second.first;
}

std::size_t Manager::connection_ids(std::uint64_t *ids, std::size_t cap) const {
  std::size_t n = 0;
  for (const auto &entry : conns_) {
    if (n < cap && ids != nullptr) ids[n] = entry.first;
    n++;
  }
  return n;
}

int Manager::listen(const char *url, int protocol, std::uint64_t *id) {
  errno = 0;
  mg_connection *c = protocol == MGFFI_PROTO_HTTP
                         ? mg_http_listen(&mgr_, url, on_event_trampoline, nullptr)
                         : mg_listen(&mgr_, url, on_event_trampoline, nullptr);
  if (c == nullptr) {
    int err = errno;
    std::string why = err != 0 ? std::strerror(err) : "invalid URL or address";
    return fail(MGFFI_ERR_LISTEN, std::string("cannot listen on ") + url + ": " + why);
  }
  ConnState *st = state_of(c);
  if (st == nullptr) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  if (protocol == MGFFI_PROTO_HTTP && g_http_protocol_handler == nullptr) {
    g_http_protocol_handler = c->pfn;
  }
  // Mongoose sizes recvfrom's address buffer from c->rem: make it IPv6 on
  // an IPv6 UDP listener, or the first sender's address is cut off.
  if (c->is_udp && c->loc.is_ip6) c->rem.is_ip6 = true;
  st->protocol = protocol;
  st->event_mask = default_mask(protocol);
  st->max_body = kDefaultMaxBody;
  st->max_ws_message = kDefaultMaxBody;
  if (protocol == MGFFI_PROTO_HTTP) {
    st->idle_timeout_ms = MGFFI_DEFAULT_IDLE_TIMEOUT_MS;
    st->request_timeout_ms = MGFFI_DEFAULT_REQUEST_TIMEOUT_MS;
  }
  *id = c->id;
  return MGFFI_OK;
}

int Manager::connect(const char *url, int protocol, std::uint64_t *id) {
  errno = 0;
  mg_connection *c = protocol == MGFFI_PROTO_HTTP
                         ? mg_http_connect(&mgr_, url, on_event_trampoline, nullptr)
                         : mg_connect(&mgr_, url, on_event_trampoline, nullptr);
  if (c == nullptr) {
    return fail(MGFFI_ERR_CONNECT, std::string("cannot connect to ") + url);
  }
  ConnState *st = state_of(c);
  if (st == nullptr) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  if (protocol == MGFFI_PROTO_HTTP && g_http_protocol_handler == nullptr) {
    g_http_protocol_handler = c->pfn;
  }
  st->protocol = protocol;
  st->event_mask = default_mask(protocol);
  *id = c->id;
  return MGFFI_OK;
}

void Manager::on_event_trampoline(mg_connection *c, int ev, void *ev_data) {
  auto *self = static_cast<Manager *>(c->mgr->userdata);
  if (self != nullptr) self->on_event(c, ev, ev_data);
}

mgffi_event *Manager::record(mg_connection *c, ConnState *st, int type) {
  mgffi_event *ev = back_->push(type, c->id);
  if (ev == nullptr) return nullptr;
  ev->flags = flags_of(c);
  ev->listener_id = st != nullptr ? st->listener_id : 0;
  copy_addr(c->rem, &ev->remote);
  return ev;
}

void Manager::on_open(mg_connection *c) {
  // An accepted connection starts with its listener's fn_data: inherit.
  ConnState *parent = c->is_accepted ? state_of(c) : nullptr;
  std::unique_ptr<ConnState> st = take_state();
  if (!st) {
    c->fn_data = nullptr;
    mg_error(c, "out of memory");
    return;
  }
  st->id = c->id;
  if (parent != nullptr) {
    st->listener_id = parent->id;
    st->protocol = parent->protocol;
    st->event_mask = parent->event_mask;
    st->max_body = parent->max_body;
    st->stream_threshold = parent->stream_threshold;
    st->max_ws_message = parent->max_ws_message;
    st->tls = parent->tls;
    st->max_connections = parent->max_connections;
    st->idle_timeout_ms = parent->idle_timeout_ms;
    st->request_timeout_ms = parent->request_timeout_ms;
    st->max_header_size = parent->max_header_size;
    st->max_headers = parent->max_headers;
    parent->children++;
  } else {
    st->max_body = kDefaultMaxBody;
    st->max_ws_message = kDefaultMaxBody;
  }
  st->last_activity_ms = mg_millis();
  ConnState *raw = st.get();
  try {
    conns_.emplace(c->id, std::make_pair(c, std::move(st)));
  } catch (const std::bad_alloc &) {
    c->fn_data = nullptr;
    mg_error(c, "out of memory");
    return;
  }
  c->fn_data = raw;
  // Mongoose reads a datagram into what recv has free, MG_IO_SIZE for a
  // fresh buffer, and the kernel drops the rest of a larger one. Room for
  // the largest datagram, once: recv is emptied after every read.
  if (c->is_udp && !mg_iobuf_resize(&c->recv, kMaxDatagram)) mg_error(c, "out of memory");
  if (raw->event_mask & MGFFI_MASK(MGFFI_EV_OPEN)) record(c, raw, MGFFI_EV_OPEN);
}

void Manager::on_close(mg_connection *c, ConnState *st) {
  if (!freeing_ && (st->event_mask & MGFFI_MASK(MGFFI_EV_CLOSE))) {
    record(c, st, MGFFI_EV_CLOSE);
  }
  c->fn_data = nullptr;
  if (st->listener_id != 0) {
    auto parent = conns_.find(st->listener_id);
    if (parent != conns_.end() && parent->second.second->children > 0) {
      parent->second.second->children--;
    }
  }
  if (st->reading_paused) {
    paused_.erase(std::remove(paused_.begin(), paused_.end(), c->id), paused_.end());
  }
  auto it = conns_.find(c->id);
  if (it != conns_.end()) {
    try {
      closed_states_.push_back(std::move(it->second.second));
    } catch (const std::bad_alloc &) {
      // The state is freed with the map entry instead of recycled.
    }
    conns_.erase(it);
  }
}

void Manager::on_event(mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_OPEN) {
    on_open(c);
    return;
  }
  ConnState *st = state_of(c);
  if (st == nullptr) return;
  // Mongoose's parser has run for this event and stepped aside: put back
  // what check_chunks held from it.
  if (st->held_tail_len > 0 && ev != MG_EV_HTTP_HDRS) restore_held_tail(c, st);
  const std::uint32_t mask = st->event_mask;
  const bool wanted = ev < 32 && (mask & MGFFI_MASK(ev)) != 0;

  switch (ev) {
    case MG_EV_POLL:  // the per-poll tick is never queued
      if (st->shutdown_pending) try_shutdown(c, st);
      if (st->close_when_served && !c->is_resp) {
        st->close_when_served = false;
        c->is_draining = 1;
      }
      if (st->idle_timeout_ms != 0 || st->request_timeout_ms != 0) {
        check_timeouts(c, st, *static_cast<std::uint64_t *>(ev_data));
      }
      if (st->protocol == MGFFI_PROTO_HTTP && c->is_accepted) {
        if (st->streaming && c->recv.len > 0) stream_body(c, st);
        check_parse_failure(c, st);
      }
      return;
    case MG_EV_CLOSE: on_close(c, st); return;
    case MG_EV_WRITE:
      st->last_activity_ms = poll_now_;  // a peer that reads is not idle
      // send_bytes only grows the buffer: one that held a large reply is
      // given back once it is out, so memory follows what is queued.
      if (c->send.len == 0 && c->send.size > kKeptSendBytes) mg_iobuf_free(&c->send);
      break;
    case MG_EV_READ:
      st->last_activity_ms = poll_now_;
      if (st->protocol == MGFFI_PROTO_HTTP) {
        if (c->is_accepted && !c->is_websocket && !st->streaming && !c->is_resp && !st->rejected &&
            c->recv.len > 0) {
          if (st->request_started_ms == 0) st->request_started_ms = poll_now_;
          // Headers still incomplete past the limit: Mongoose would buffer
          // up to MG_MAX_RECV_SIZE before giving up.
          if (c->recv.len > st->max_header_size &&
              mg_http_get_request_len(c->recv.buf, c->recv.len) == 0) {
            reject(c, st, 431, "request head larger than the limit");
            return;
          }
        }
        if (c->is_websocket) {
          check_ws_size(c, st);
        } else if (st->streaming) {
          stream_body(c, st);
        } else if (c->is_accepted) {
          check_parse_failure(c, st);
        }
        if (wanted && !c->is_websocket) {
          mgffi_event *e = record(c, st, MGFFI_EV_READ);
          if (e != nullptr) e->value = *static_cast<long *>(ev_data);
        }
        return;
      }
      // Raw TCP/UDP: hand the bytes to Lua and consume them, unless this
      // poll has queued enough already (then read again next poll).
      if (c->recv.len > 0 && back_->bytes() >= max_queue_bytes_ && !c->is_udp) {
        if (!st->throttled) {
          st->throttled = true;
          c->is_full = 1;
          throttled_.push_back(c->id);
        }
        return;
      }
      if (c->recv.len > 0) {
        if (wanted) {
          mgffi_event *e = record(c, st, MGFFI_EV_READ);
          if (e != nullptr) {
            e->value = static_cast<std::int64_t>(c->recv.len);
            if (!back_->attach_data(c->recv.buf, c->recv.len)) mg_error(c, "out of memory");
          }
        }
        c->recv.len = 0;
      }
      if (c->is_udp && !c->is_closing) drain_udp(c, st);
      return;
    case MG_EV_ACCEPT:
      if (over_connection_limit(c, st)) return;
      // fall through
    case MG_EV_CONNECT:
      // TLS starts here, in C: Lua would be too late for the handshake.
      if (st->tls && (c->is_tls || ev == MG_EV_ACCEPT)) start_tls(c, st);
      break;
    case MG_EV_HTTP_HDRS:
      if (c->is_accepted) on_http_headers(c, st, static_cast<mg_http_message *>(ev_data));
      return;
    case MG_EV_HTTP_MSG: on_http_message(c, st, static_cast<mg_http_message *>(ev_data)); return;
    default: break;
  }

  if (!wanted) return;
  if (ev == MG_EV_WS_CTL && (static_cast<mg_ws_message *>(ev_data)->flags & 15) == 0) {
    return;  // a fragment: Mongoose reassembles the message itself
  }
  mgffi_event *e = record(c, st, ev);
  if (e == nullptr) return;
  switch (ev) {
    case MG_EV_ERROR: {
      const char *msg = static_cast<const char *>(ev_data);
      if (msg == nullptr) msg = "error";
      // Mongoose says only "socket error"; the socket knows why.
      int so_error = 0;
      socklen_t so_len = sizeof(so_error);
      int fd = static_cast<int>(reinterpret_cast<std::size_t>(c->fd));
      if (std::strcmp(msg, "socket error") == 0 && c->fd != nullptr &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) == 0 && so_error != 0) {
        char text[160];
        int n = std::snprintf(text, sizeof(text), "%s: %s", msg, std::strerror(so_error));
        back_->attach_data(text, n > 0 ? std::strlen(text) : 0);
      } else if (c->is_tls_hs) {
        char text[200];
        int n = std::snprintf(text, sizeof(text), "TLS handshake failed (%s)", msg);
        back_->attach_data(text, n > 0 ? std::strlen(text) : 0);
      } else {
        back_->attach_data(msg, std::strlen(msg));
      }
      break;
    }
    case MG_EV_WRITE: e->value = *static_cast<long *>(ev_data); break;
    case MG_EV_WS_OPEN: {
      auto *hm = static_cast<mg_http_message *>(ev_data);
      if (st->request.owns(hm)) {
        e->http = &st->request.view();
      } else if (hm != nullptr) {
        HttpStore *store = back_->borrow_http_store();
        if (store != nullptr && store->assign(*hm, true)) e->http = &store->view();
      }
      break;
    }
    case MG_EV_WS_MSG:
    case MG_EV_WS_CTL: {
      auto *wm = static_cast<mg_ws_message *>(ev_data);
      if (ev == MG_EV_WS_MSG && wm->data.len > st->max_ws_message) {
        back_->pop();  // not delivered: refused below instead
        refuse_ws_message(c, st, wm->data.len);
        break;
      }
      e->value = wm->flags;
      if (!back_->attach_data(wm->data.buf, wm->data.len)) mg_error(c, "out of memory");
      break;
    }
    case MG_EV_SNTP_TIME:
      e->value = static_cast<std::int64_t>(*static_cast<std::uint64_t *>(ev_data));
      break;
    case MG_EV_WAKEUP: {
      auto *s = static_cast<mg_str *>(ev_data);
      back_->attach_data(s->buf, s->len);
      break;
    }
    default: break;
  }
}

// Mongoose drops a request it cannot parse without answering; answer 400.
// It marks such a connection draining, which the glue never does itself
// without setting closing_by_glue.
void Manager::check_parse_failure(mg_connection *c, ConnState *st) {
  if (c->is_draining && !st->closing_by_glue && !st->rejected && !st->request_pending) {
    reject(c, st, 400, "malformed HTTP request");
  }
}

void Manager::reject(mg_connection *c, ConnState *st, int status, const char *reason) {
  st->rejected = true;
  char head[192];
  const char *text = status_text(status);
  int body_len = std::snprintf(nullptr, 0, "%d %s\n", status, text);
  int n = std::snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %d\r\n\r\n%d %s\n",
                        status, text, body_len, status, text);
  if (n > 0) send_bytes(c, head, static_cast<std::size_t>(n) < sizeof(head) ? n : sizeof(head) - 1);
  c->recv.len = 0;
  c->is_draining = 1;
  st->closing_by_glue = true;
  mgffi_event *e = record(c, st, MGFFI_EV_HTTP_REJECTED);
  if (e != nullptr) {
    e->value = status;
    back_->attach_data(reason, std::strlen(reason));
  }
}

// Peeks at the frame Mongoose is still buffering: a message announced
// larger than the limit is refused before it is received whole.
void Manager::check_ws_size(mg_connection *c, ConnState *st) {
  // Mongoose keeps the fragments received so far at the start of recv,
  // behind one byte holding the message's opcode: pfn_data is where the
  // next frame starts, so the message has pfn_data - 1 bytes so far.
  std::size_t next_frame = reinterpret_cast<std::size_t>(c->pfn_data);
  if (next_frame > c->recv.len) return;
  std::size_t assembled = next_frame > 0 ? next_frame - 1 : 0;
  const unsigned char *p = c->recv.buf + next_frame;
  std::size_t avail = c->recv.len - next_frame;
  if (avail < 2) return;
  std::uint64_t len = p[1] & 0x7f;
  if (len == 126) {
    if (avail < 4) return;
    len = (static_cast<std::uint64_t>(p[2]) << 8) | p[3];
  } else if (len == 127) {
    if (avail < 10) return;
    len = 0;
    for (int i = 2; i < 10; i++) len = (len << 8) | p[i];
  }
  // Overflow-safe: a length near 2^64 must not wrap around to "small".
  if (len > st->max_ws_message || assembled > st->max_ws_message - len) {
    refuse_ws_message(c, st, len > UINT64_MAX - assembled ? UINT64_MAX : assembled + len);
  }
}

void Manager::refuse_ws_message(mg_connection *c, ConnState *st, std::uint64_t size) {
  static const unsigned char kClose1009[] = {0x03, 0xf1, 'm', 'e', 's', 's', 'a', 'g', 'e',
                                             ' ',  't',  'o', 'o', ' ', 'b', 'i', 'g'};
  send_ws_frame(c, kClose1009, sizeof(kClose1009), WEBSOCKET_OP_CLOSE);
  c->recv.len = 0;
  c->pfn_data = nullptr;  // Mongoose's count of buffered fragment bytes
  c->is_draining = 1;
  st->closing_by_glue = true;
  mgffi_event *e = record(c, st, MGFFI_EV_WS_TOO_BIG);
  if (e != nullptr) e->value = static_cast<std::int64_t>(size);
}

void Manager::on_http_headers(mg_connection *c, ConnState *st, mg_http_message *hm) {
  // Mongoose fires HTTP_HDRS again on every read until the body is in.
  mg_str *te = mg_http_get_header(hm, "Transfer-Encoding");
  bool chunked = te != nullptr;
  if (te != nullptr && mg_strcasecmp(*te, mg_str("chunked")) != 0) {
    // Mongoose would drop the connection without a word.
    reject(c, st, 400, "unsupported Transfer-Encoding");
    return;
  }
  const bool first_look = !st->headers_seen;
  if (first_look) {
    st->headers_seen = true;
    std::size_t lines = 0;  // Mongoose parses at most MG_MAX_HTTP_HEADERS, ignoring more
    for (std::size_t i = 0; i < hm->head.len; i++) lines += hm->head.buf[i] == '\n';
    if (hm->head.len > st->max_header_size || (lines >= 2 && lines - 2 > st->max_headers)) {
      reject(c, st, 431, "request head larger than the limit");
      return;
    }
    if (!chunked && st->stream_threshold > 0 && hm->body.len > st->stream_threshold) {
      // Hand the body to Lua piece by piece instead of buffering it.
      if (!answer_expect(c, st, hm)) return;
      if (!st->request.assign(*hm, false)) {
        mg_error(c, "out of memory");
        return;
      }
      st->request_pending = true;
      st->head_request = false;
      st->close_after_response = wants_close(hm);
      st->http10 = is_http10(hm);
      st->streaming = true;
      st->stream_remaining = hm->body.len;
      mgffi_event *e = record(c, st, MGFFI_EV_HTTP_HDRS);
      if (e != nullptr) {
        e->flags |= MGFFI_F_STREAMING;
        e->http = &st->request.view();
      }
      // Removing the head makes Mongoose's parser let go of the connection;
      // the READ that follows in the same call delivers the first bytes.
      mg_iobuf_del(&c->recv, 0, hm->head.len);
      return;
    }
  }
  // Mongoose reads a Content-Length of 2^64-1 as "none" (a body of 0):
  // check the header's digits here, overflow included.
  if (!chunked) {
    mg_str *cl = mg_http_get_header(hm, "Content-Length");
    if (cl != nullptr) {
      std::uint64_t value = 0;
      bool valid = cl->len > 0;
      for (std::size_t i = 0; valid && i < cl->len; i++) {
        char ch = cl->buf[i];
        if (ch < '0' || ch > '9') {
          valid = false;
        } else if (value > (UINT64_MAX - static_cast<unsigned>(ch - '0')) / 10) {
          value = UINT64_MAX;  // saturate: surely over the limit
        } else {
          value = value * 10 + static_cast<unsigned>(ch - '0');
        }
      }
      if (!valid) {
        reject(c, st, 400, "invalid Content-Length");
        return;
      }
      if (value > st->max_body && !st->streaming) {
        reject(c, st, 413, "request body larger than the limit");
        return;
      }
    }
  }
  if (!chunked && hm->body.len != static_cast<size_t>(-1) && hm->body.len > st->max_body) {
    reject(c, st, 413, "request body larger than the limit");
  } else if (chunked && c->recv.len > hm->head.len + st->max_body + 64) {
    reject(c, st, 413, "chunked request body larger than the limit");
  } else if (chunked && !check_chunks(c, st, hm)) {
    return;
  } else if (first_look) {
    answer_expect(c, st, hm);
  }
}

// Chunked bodies: broken framing gets a 400 (Mongoose would just close).
// A read that ended inside a chunk's size line is hidden from Mongoose,
// which would take it for broken framing, until more bytes arrive: the
// unfinished line is held back, and put back after Mongoose's parser has
// returned (restore_held_tail). Returns false when it rejected.
bool Manager::check_chunks(mg_connection *c, ConnState *st, mg_http_message *hm) {
  const char *body = reinterpret_cast<const char *>(c->recv.buf) + hm->head.len;
  ChunkScan scan = scan_chunks(body, c->recv.len - hm->head.len);
  if (scan.verdict == ChunkScan::kBroken) {
    reject(c, st, 400, "invalid chunked body");
    return false;
  }
  if (scan.verdict == ChunkScan::kSplitSizeLine && scan.tail <= sizeof(st->held_tail)) {
    std::memcpy(st->held_tail, c->recv.buf + c->recv.len - scan.tail, scan.tail);
    st->held_tail_len = static_cast<std::uint8_t>(scan.tail);
    // A shorter recv makes Mongoose's parser step aside for this read.
    c->recv.len -= scan.tail;
  }
  return true;
}

void Manager::restore_held_tail(mg_connection *c, ConnState *st) {
  std::size_t n = st->held_tail_len;
  st->held_tail_len = 0;
  if (mg_iobuf_add(&c->recv, c->recv.len, st->held_tail, n) == 0) {
    mg_error(c, "out of memory");
    return;
  }
  c->pfn = g_http_protocol_handler;
}

// Expect: 100-continue (curl sends it with bodies over 1 MiB, then waits a
// second for an answer): once the head has passed the limits, ask for the
// body. Any other expectation is refused with 417 (RFC 9110, 10.1.1); an
// HTTP/1.0 request's Expect is ignored. Returns false when it rejected.
bool Manager::answer_expect(mg_connection *c, ConnState *st, mg_http_message *hm) {
  mg_str *expect = mg_http_get_header(hm, "Expect");
  if (expect == nullptr || is_http10(hm)) return true;
  if (mg_strcasecmp(*expect, mg_str("100-continue")) != 0) {
    reject(c, st, 417, "unsupported Expect header");
    return false;
  }
  static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
  // A chunked body's length is unknown here: always ask for it.
  const bool body_missing = mg_http_get_header(hm, "Transfer-Encoding") != nullptr ||
                            c->recv.len < hm->head.len + hm->body.len;
  if (body_missing) send_bytes(c, kContinue, sizeof(kContinue) - 1);
  return true;
}

void Manager::stream_body(mg_connection *c, ConnState *st) {
  std::size_t n = c->recv.len;
  if (n > st->stream_remaining) n = static_cast<std::size_t>(st->stream_remaining);
  if (n > 0) {
    st->last_activity_ms = poll_now_;
    mgffi_event *e = record(c, st, MGFFI_EV_HTTP_BODY);
    if (e != nullptr) {
      e->value = static_cast<std::int64_t>(n);
      if (!back_->attach_data(c->recv.buf, n)) mg_error(c, "out of memory");
    }
    mg_iobuf_del(&c->recv, 0, n);
    st->stream_remaining -= n;
  }
  if (st->stream_remaining == 0) {
    st->request_started_ms = 0;
    record(c, st, MGFFI_EV_HTTP_BODY_END);
    st->streaming = false;
    st->headers_seen = false;
    if (st->close_after_response && !st->request_pending) {
      c->is_draining = 1;  // answered before the body ended, asked to close
      return;
    }
    // Back to Mongoose's parser for what follows, held until the reply
    // (unless the handler already answered, e.g. 403 to an upload).
    c->pfn = g_http_protocol_handler;
    c->is_resp = st->request_pending ? 1 : 0;
  }
}

void Manager::on_http_message(mg_connection *c, ConnState *st, mg_http_message *hm) {
  const bool wanted = (st->event_mask & MGFFI_MASK(MGFFI_EV_HTTP_MSG)) != 0;
  if (c->is_accepted) {
    st->headers_seen = false;
    st->request_started_ms = 0;
    st->last_activity_ms = poll_now_;
    if (st->rejected) return;
    if (!st->request.assign(*hm, true)) {
      mg_error(c, "out of memory");
      return;
    }
    st->request_pending = true;
    st->head_request = mg_strcasecmp(hm->method, mg_str("HEAD")) == 0;
    st->close_after_response = wants_close(hm);
    st->http10 = is_http10(hm);
    if (!wanted) return;
    mgffi_event *e = record(c, st, MGFFI_EV_HTTP_MSG);
    if (e != nullptr) e->http = &st->request.view();
    return;
  }
  if (!wanted) return;
  mgffi_event *e = record(c, st, MGFFI_EV_HTTP_MSG);
  if (e == nullptr) return;
  HttpStore *store = back_->borrow_http_store();
  if (store == nullptr || !store->assign(*hm, true)) {
    mg_error(c, "out of memory");
    return;
  }
  e->http = &store->view();
  e->value = store->view().status;
}

namespace {

// The Connection header among a reply's "Name: value\r\n" lines.
struct ConnectionHeader {
  bool present = false;
  bool close = false;  // its value is "close"
};

ConnectionHeader find_connection_header(const char *headers, std::size_t len) {
  ConnectionHeader found;
  static const char kName[] = "connection:";
  const std::size_t name_len = sizeof(kName) - 1;
  std::size_t i = 0;
  while (i < len) {
    std::size_t end = i;
    while (end < len && headers[end] != '\n') end++;
    if (end - i > name_len && strncasecmp(headers + i, kName, name_len) == 0) {
      mg_str value = mg_str_n(headers + i + name_len, end - i - name_len);
      while (value.len > 0 && (value.buf[0] == ' ' || value.buf[0] == '\t'))
        value.buf++, value.len--;
      while (value.len > 0 && std::strchr(" \t\r", value.buf[value.len - 1]) != nullptr)
        value.len--;
      found.present = true;
      found.close = found.close || mg_strcasecmp(value, mg_str("close")) == 0;
    }
    i = end + 1;
  }
  return found;
}

}  // namespace

// The Connection header the glue adds to a reply whose own headers are
// these, or nullptr. The reply's own "Connection: close" closes the
// connection after it, like the client's; either way one Connection header
// goes out.
const char *Manager::own_connection_header(ConnState *st, const char *headers, std::size_t len) {
  ConnectionHeader h = find_connection_header(headers, len);
  if (h.close) st->close_after_response = true;
  if (h.present) return nullptr;
  if (st->close_after_response) return "Connection: close\r\n";
  if (st->http10) return "Connection: keep-alive\r\n";
  return nullptr;
}

void Manager::send_status_and_headers(mg_connection *c, ConnState *st, int status,
                                      const char *headers, std::size_t headers_len) {
  char line[96];
  int n = std::snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, status_text(status));
  send_bytes(c, line, static_cast<std::size_t>(n));
  if (headers_len > 0) send_bytes(c, headers, headers_len);
  if (const char *own = own_connection_header(st, headers, headers_len)) {
    send_bytes(c, own, std::strlen(own));
  }
}

void Manager::finish_response(mg_connection *c, ConnState *st) {
  st->request_pending = false;
  st->last_activity_ms = mg_millis();
  st->chunked_open = false;
  c->is_resp = 0;  // lets Mongoose parse a pipelined request on next poll
  if (st->close_after_response) {
    st->closing_by_glue = true;
    // A streamed body still arriving is read to its end first: closing
    // with unread bytes would reset the connection, and the client might
    // lose the reply.
    if (!st->streaming) c->is_draining = 1;
  }
}

int Manager::http_reply(mg_connection *c, int status, const char *headers, std::size_t headers_len,
                        const char *body, std::size_t body_len) {
  ConnState *st = state_of(c);
  if (!st->request_pending || st->chunked_open) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  send_status_and_headers(c, st, status, headers, headers_len);
  char cl[48];
  int n = std::snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", body_len);
  send_bytes(c, cl, static_cast<std::size_t>(n));
  if (body_len > 0 && !st->head_request) send_bytes(c, body, body_len);
  finish_response(c, st);
  return MGFFI_OK;
}

int Manager::http_begin_chunked(mg_connection *c, int status, const char *headers,
                                std::size_t headers_len) {
  ConnState *st = state_of(c);
  if (!st->request_pending || st->chunked_open) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  send_status_and_headers(c, st, status, headers, headers_len);
  send_bytes(c, "Transfer-Encoding: chunked\r\n\r\n", 30);
  st->chunked_open = true;
  return MGFFI_OK;
}

int Manager::http_write_chunk(mg_connection *c, const char *buf, std::size_t len) {
  ConnState *st = state_of(c);
  if (!st->chunked_open) return fail(MGFFI_ERR_STATE, "no chunked response is open");
  if (len == 0) return MGFFI_OK;  // an empty chunk would end the response
  if (st->head_request) return MGFFI_OK;
  char size_line[24];
  int n = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
  send_bytes(c, size_line, static_cast<std::size_t>(n));
  send_bytes(c, buf, len);
  send_bytes(c, "\r\n", 2);
  return MGFFI_OK;
}

int Manager::http_end_chunked(mg_connection *c) {
  ConnState *st = state_of(c);
  if (!st->chunked_open) return fail(MGFFI_ERR_STATE, "no chunked response is open");
  if (!st->head_request) send_bytes(c, "0\r\n\r\n", 5);
  finish_response(c, st);
  return MGFFI_OK;
}

int Manager::http_serve(mg_connection *c, const char *root_or_path, bool is_dir,
                        const char *extra_headers, const char *mime_types) {
  ConnState *st = state_of(c);
  if (!st->request_pending || st->chunked_open || st->streaming) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  mg_http_serve_opts opts{};
  std::string headers = extra_headers != nullptr ? extra_headers : "";
  if (const char *own = own_connection_header(st, headers.data(), headers.size())) {
    headers += own;
  }
  opts.extra_headers = headers.empty() ? nullptr : headers.c_str();
  opts.mime_types = mime_types;
  if (is_dir) {
    opts.root_dir = root_or_path;
    mg_http_serve_dir(c, &st->request.mongoose_view(), &opts);
  } else {
    mg_http_serve_file(c, &st->request.mongoose_view(), root_or_path, &opts);
  }
  // Mongoose clears is_resp itself once the file is sent; close after that
  // if the client asked for it.
  st->request_pending = false;
  if (st->close_after_response) {
    st->closing_by_glue = true;
    if (c->is_resp) {
      st->close_when_served = true;
    } else {
      c->is_draining = 1;
    }
  }
  return MGFFI_OK;
}

int Manager::ws_upgrade(mg_connection *c, const char *extra, std::size_t extra_len) {
  ConnState *st = state_of(c);
  if (!st->request_pending || st->chunked_open) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  mg_str *key = mg_http_get_header(&st->request.mongoose_view(), "Sec-WebSocket-Key");
  if (key != nullptr && key->len == 0) {
    http_reply(c, 400, nullptr, 0, "empty Sec-WebSocket-Key\n", 24);
    return fail(MGFFI_ERR_STATE, "empty Sec-WebSocket-Key: answered 400");
  }
  st->request_pending = false;
  st->close_after_response = false;
  // HTTP's keep-alive and request timeouts do not apply to a WebSocket,
  // which may rightly stay quiet for long.
  st->idle_timeout_ms = 0;
  st->request_timeout_ms = 0;
  st->request_started_ms = 0;
  // Mongoose would echo the client's whole Sec-WebSocket-Protocol list;
  // the application picks one and sends it in extra instead.
  mg_http_message &hm = st->request.mongoose_view();
  for (auto &h : hm.headers) {
    if (h.name.len == 0) break;
    if (mg_strcasecmp(h.name, mg_str("Sec-WebSocket-Protocol")) == 0) {
      h.name = mg_str("X-Offered-WebSocket-Protocol");
    }
  }
  if (extra != nullptr && extra_len > 0) {
    mg_ws_upgrade(c, &st->request.mongoose_view(), "%.*s", static_cast<int>(extra_len), extra);
  } else {
    mg_ws_upgrade(c, &st->request.mongoose_view(), nullptr);
  }
  if (c->is_draining) st->closing_by_glue = true;  // 426: not a WS request
  return MGFFI_OK;
}

int Manager::ws_connect(const char *url, const char *extra, std::size_t extra_len,
                        std::uint64_t *id) {
  mg_connection *c = extra != nullptr && extra_len > 0
                         ? mg_ws_connect(&mgr_, url, on_event_trampoline, nullptr, "%.*s",
                                         static_cast<int>(extra_len), extra)
                         : mg_ws_connect(&mgr_, url, on_event_trampoline, nullptr, nullptr);
  if (c == nullptr) return fail(MGFFI_ERR_CONNECT, std::string("cannot connect to ") + url);
  ConnState *st = state_of(c);
  if (st == nullptr) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  st->protocol = MGFFI_PROTO_HTTP;
  st->event_mask = default_mask(MGFFI_PROTO_HTTP);
  *id = c->id;
  return MGFFI_OK;
}

// Mongoose reads one datagram per poll; a burst would overflow the socket
// buffer. Read what else is waiting now, each datagram its own event.
void Manager::drain_udp(mg_connection *c, ConnState *st) {
  constexpr int kMaxPerPoll = 256;
  if (!udp_scratch_) udp_scratch_.reset(new (std::nothrow) char[kMaxDatagram]);
  if (!udp_scratch_) return;
  int fd = static_cast<int>(reinterpret_cast<std::size_t>(c->fd));
  const bool wanted = (st->event_mask & MGFFI_MASK(MGFFI_EV_READ)) != 0;
  for (int i = 0; i < kMaxPerPoll && !st->reading_paused; i++) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd, udp_scratch_.get(), kMaxDatagram, MSG_DONTWAIT,
                         reinterpret_cast<sockaddr *>(&from), &from_len);
    if (n < 0) break;
    from_sockaddr(from, &c->rem);
    if (!wanted) continue;
    mgffi_event *e = record(c, st, MGFFI_EV_READ);
    if (e == nullptr) break;
    e->value = n;
    if (!back_->attach_data(udp_scratch_.get(), static_cast<std::size_t>(n))) break;
  }
}

void Manager::try_shutdown(mg_connection *c, ConnState *st) {
  if (c->send.len > 0 || c->fd == nullptr) return;
  st->shutdown_pending = false;
  ::shutdown(static_cast<int>(reinterpret_cast<std::size_t>(c->fd)), SHUT_WR);
}

int Manager::shutdown_write(mg_connection *c) {
  if (c->is_udp || c->is_listening) return fail(MGFFI_ERR_STATE, "not a TCP connection");
  ConnState *st = state_of(c);
  st->shutdown_pending = true;
  try_shutdown(c, st);
  return MGFFI_OK;
}

// A listener closed at once gives its port back now, not at the next poll
// (when Mongoose frees it), so the program can listen there again at once.
// Mongoose skips an invalid socket when it frees the connection.
void Manager::release_listening_socket(mg_connection *c) {
  int fd = static_cast<int>(reinterpret_cast<std::size_t>(c->fd));
  if (fd == static_cast<int>(MG_INVALID_SOCKET)) return;
  if (mgr_.epoll_fd >= 0) epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  c->fd = reinterpret_cast<void *>(static_cast<std::size_t>(MG_INVALID_SOCKET));
}

// With epoll, a paused socket that stays readable would wake every poll at
// once (Mongoose only skips the read). Drop its read interest instead; it
// is re-applied each poll because Mongoose re-arms EPOLLIN after writes.
void Manager::apply_paused_reads() {
  for (std::uint64_t id : paused_) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    mg_connection *c = it->second.first;
    if (c->fd == nullptr || mgr_.epoll_fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLERR | (c->send.len > 0 ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_MOD, static_cast<int>(reinterpret_cast<std::size_t>(c->fd)),
              &ev);
  }
}

int Manager::pause_reading(mg_connection *c, bool paused) {
  ConnState *st = state_of(c);
  if (st->reading_paused == paused) return MGFFI_OK;
  st->reading_paused = paused;
  c->is_full = paused ? 1 : 0;
  if (paused) {
    paused_.push_back(c->id);
    apply_paused_reads();
  } else {
    paused_.erase(std::remove(paused_.begin(), paused_.end(), c->id), paused_.end());
    if (c->fd != nullptr && mgr_.epoll_fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | (c->send.len > 0 ? EPOLLOUT : 0u);
      ev.data.ptr = c;
      epoll_ctl(mgr_.epoll_fd, EPOLL_CTL_MOD,
                static_cast<int>(reinterpret_cast<std::size_t>(c->fd)), &ev);
    }
  }
  return MGFFI_OK;
}

int Manager::udp_send_to(mg_connection *c, const mgffi_addr &to, const void *buf, std::size_t len) {
  if (!c->is_udp) return fail(MGFFI_ERR_STATE, "not a UDP connection");
  mg_addr saved = c->rem;
  std::memcpy(c->rem.addr.ip, to.ip, sizeof(to.ip));
  c->rem.port = mg_htons(to.port);
  c->rem.is_ip6 = to.is_ip6 != 0;
  bool ok = send_bytes(c, buf, len);
  c->rem = saved;
  if (!ok) return datagram_failed();
  return MGFFI_OK;
}

int Manager::datagram_failed() {
  return fail(MGFFI_ERR_STATE, std::string("datagram not sent: ") + std::strerror(errno));
}

void Manager::start_tls(mg_connection *c, ConnState *st) {
  if (!c->is_tls) return;  // a plain-text URL on a listener with TLS set
  const TlsConfig &t = *st->tls;
  // Mongoose's builtin TLS takes a non-NULL pointer as "given", even empty.
  auto view = [](const std::string &v) {
    return v.empty() ? mg_str_n(nullptr, 0) : mg_str_n(v.data(), v.size());
  };
  mg_tls_opts opts{};
  opts.ca = view(t.ca);
  opts.cert = view(t.cert);
  opts.key = view(t.key);
  opts.name = view(t.name);
  opts.skip_verification = t.skip_verification;
  mg_tls_init(c, &opts);
}

int Manager::set_tls(mg_connection *c, std::shared_ptr<const TlsConfig> tls) {
  if (MG_TLS == MG_TLS_NONE) {
    return fail(MGFFI_ERR_STATE, "this build of mongoose-ffi has no TLS (MGFFI_TLS=none)");
  }
  ConnState *st = state_of(c);
  st->tls = std::move(tls);
  // A client already connected (or a listener) starts TLS at its next
  // ACCEPT/CONNECT; nothing else to do here.
  return MGFFI_OK;
}

// One connection too many for its listener: closed before Lua hears of it.
bool Manager::over_connection_limit(mg_connection *c, ConnState *st) {
  auto parent = conns_.find(st->listener_id);
  if (parent == conns_.end()) return false;
  if (parent->second.second->children <= st->max_connections) return false;
  if (st->protocol == MGFFI_PROTO_HTTP && !c->is_tls) {
    static const char k503[] =
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    send_bytes(c, k503, sizeof(k503) - 1);
    c->is_draining = 1;
  } else {
    c->is_closing = 1;
  }
  st->closing_by_glue = true;
  st->rejected = true;
  st->event_mask = 0;  // nothing of it reaches Lua
  return true;
}

void Manager::check_timeouts(mg_connection *c, ConnState *st, std::uint64_t now) {
  if (c->is_listening || c->is_closing || c->is_draining) return;
  if (st->request_timeout_ms != 0 && st->request_started_ms != 0 && !st->request_pending &&
      now - st->request_started_ms > st->request_timeout_ms) {
    reject(c, st, 408, "request not received in time");
    return;
  }
  const bool idle = st->idle_timeout_ms != 0 && now - st->last_activity_ms > st->idle_timeout_ms;
  if (idle && st->streaming) {
    // A streamed request body that stopped arriving.
    if (st->request_pending && !st->chunked_open) {
      st->request_pending = false;  // Lua's late reply now fails cleanly
      reject(c, st, 408, "request body stopped arriving");
    } else {
      st->closing_by_glue = true;
      c->is_draining = 1;
    }
    return;
  }
  // Idle: no request in progress and nothing read or written for a while;
  // a peer that stopped reading what we send counts as idle too.
  if (idle && !st->request_pending && st->request_started_ms == 0) {
    st->closing_by_glue = true;
    if (c->send.len > 0) {
      c->is_closing = 1;  // draining would wait for a flush that never comes
    } else {
      c->is_draining = 1;
    }
  }
}

}  // namespace mgffi
