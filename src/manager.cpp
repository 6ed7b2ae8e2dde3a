// The registry of connections, the poll, and the event switch that routes
// what Mongoose reports to the part owning the protocol (see manager.hpp).
#include "manager.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "http_static.hpp"
#include "platform.hpp"
#include "pool.hpp"

namespace mgffi {

namespace {

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

constexpr std::size_t kMaxDatagram = 65536;       // above any UDP payload
constexpr std::size_t kMaxFreeStates = 1024;      // recycled connection states kept
constexpr std::size_t kMaxFreeStores = 256;       // recycled request stores kept
constexpr std::size_t kKeptRequestBytes = 65536;  // request buffer a recycled store keeps

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

// Mongoose's log output goes to stderr, and nowhere at level "none": its
// hex dumps of bad requests are printed regardless of the level otherwise,
// and stdout belongs to the application.
void log_to_stderr(char ch, void *) {
  if (mg_log_level > MG_LL_NONE) std::fputc(ch, stderr);
}

std::uint64_t earlier(std::uint64_t a, std::uint64_t b) {
  return a < b ? a : b;
}

}  // namespace

#if defined(_WIN32) && MG_TLS == MG_TLS_BUILTIN
// Mongoose's wall clock (mg_now() = mg_millis() + this), set by SNTP.
extern "C" uint64_t mg_boot_timestamp_ms;
#endif

Manager::Manager() {
  mg_log_set_fn(log_to_stderr, nullptr);
  mg_mgr_init(&mgr_);
#if defined(_WIN32) && MG_TLS == MG_TLS_BUILTIN
  // The builtin TLS checks certificate dates against mg_now() and, while
  // it is unset, asks time.google.com by SNTP before verifying (which
  // fails without Internet access). Windows keeps its clock in sync
  // itself: Mongoose's clock starts from it.
  if (mg_boot_timestamp_ms == 0) mg_boot_timestamp_ms = system_time_ms() - mg_millis();
#endif
  mgr_.userdata = this;
  parking_.init(&mgr_);
  conns_.reserve(64);
}

Manager::~Manager() {
  freeing_ = true;
  parking_.relink_all(*this);
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
  const bool recycled = !free_states_.empty();
  std::unique_ptr<ConnState> st = take_from(free_states_);
  if (recycled) *st = ConnState();
  return st;
}

// States of connections closed during the previous poll may still be
// referenced by the events Lua has just read; only now are they free. Their
// request stores go back to the pool (a store that held a large body gives
// its memory back), and past a cap states are freed, so memory does not stay
// at the peak of connections x max_body.
void Manager::recycle_closed_states() {
  try {
    for (auto &st : closed_states_) {
      if (st->http.store) give_back_store(std::move(st->http.store));
      if (st->ws && free_ws_.size() < kMaxFreeStates) free_ws_.push_back(std::move(st->ws));
      if (free_states_.size() < kMaxFreeStates) free_states_.push_back(std::move(st));
    }
  } catch (const std::bad_alloc &) {
    // Dropping them frees the memory instead of recycling it.
  }
  closed_states_.clear();
  // Connections that went idle after a reply, or became WebSockets, give
  // their request store back (its views were valid until this poll).
  for (std::uint64_t id : idle_stores_) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    ConnState *st = it->second.second.get();
    const bool upgraded = st->http.in == HttpRequest::In::kWebSocket;
    const bool between = st->http.in == HttpRequest::In::kHead &&
                         st->http.out == HttpRequest::Out::kNone && st->http.scanned == 0;
    if ((upgraded || between) && st->http.store) {
      give_back_store(std::move(st->http.store));
    }
  }
  idle_stores_.clear();
}

std::unique_ptr<HttpStore> Manager::take_store() {
  return take_from(free_stores_);
}

void Manager::give_back_store(std::unique_ptr<HttpStore> store) {
  if (free_stores_.size() >= kMaxFreeStores) return;  // freed here
  if (store->capacity() > kKeptRequestBytes) store->release();
  try {
    free_stores_.push_back(std::move(store));
  } catch (const std::bad_alloc &) {
    // Freed instead of recycled.
  }
}

int Manager::poll(int timeout_ms) {
  recycle_closed_states();
  poll_now_ = mg_millis();
  for (std::uint64_t id : throttled_) {
    auto it = conns_.find(id);
    if (it != conns_.end())
      set_hold(it->second.first, it->second.second.get(), kHoldThrottle, false);
  }
  throttled_.clear();
  if (flush_queued()) timeout_ms = 0;
  // Buffered input (a pipelined request after its predecessor's reply, frames
  // after an upgrade) is parsed by this poll without waiting for the kernel.
  if (!input_pending_.empty()) {
    timeout_ms = 0;
    input_pending_.clear();
  }
  if (parking_.wake(*this, poll_now_, false) > 0) timeout_ms = 0;
  const std::uint64_t due = parking_.next_deadline();
  if (due != UINT64_MAX && timeout_ms > 0) {
    const std::uint64_t wait = due > poll_now_ ? due - poll_now_ : 0;
    if (wait < static_cast<std::uint64_t>(timeout_ms)) timeout_ms = static_cast<int>(wait);
  }
  mg_mgr_poll(&mgr_, timeout_ms < 0 ? 0 : timeout_ms);
  check_accept_failures();
  // A parked socket became ready (or a deadline came) while Mongoose waited:
  // bring it back and let Mongoose serve it now.
  poll_now_ = mg_millis();
  if (parking_.wake(*this, poll_now_, parking_.io_ready()) > 0) mg_mgr_poll(&mgr_, 0);
  file_poll();  // sockets a file is sent to that have room again
  parking_.settle(*this, poll_now_);
  back_->finalize();
  std::swap(front_, back_);
  back_->clear();
  queue_gen_++;
  return static_cast<int>(front_->size());
}

mg_connection *Manager::lookup(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.first->is_closing) {
    fail(MGFFI_ERR_NO_CONN, "connection " + std::to_string(id) + " is closed");
    return nullptr;
  }
  return it->second.first;
}

mg_connection *Manager::find(std::uint64_t id) {
  mg_connection *c = lookup(id);
  if (c != nullptr) parking_.unpark(c, state_of(c));
  return c;
}

std::size_t Manager::connection_ids(std::uint64_t *ids, std::size_t cap) const {
  std::size_t n = 0;
  for (const auto &entry : conns_) {
    if (n < cap && ids != nullptr) ids[n] = entry.first;
    n++;
  }
  return n;
}

void Manager::mark_input_pending(ConnState *st) {
  if (st->input_pending) return;
  st->input_pending = true;
  try {
    input_pending_.push_back(st->id);
  } catch (const std::bad_alloc &) {
    // The input is parsed at the next poll that has I/O to do.
  }
}

void Manager::on_event_trampoline(mg_connection *c, int ev, void *ev_data) {
  auto *self = static_cast<Manager *>(c->mgr->userdata);
  if (self != nullptr) self->on_event(c, ev, ev_data);
}

mgffi_event *Manager::record(mg_connection *c, ConnState *st, int type) {
  mgffi_event *ev = back_->push(type, c->id);
  if (ev == nullptr) return nullptr;
  if (st != nullptr) st->recorded_gen = queue_gen_;
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
    st->limits = parent->limits;  // shared until one side changes a value
    st->tls = parent->tls;
    st->deflate = parent->deflate;
    if (parent->listener) parent->listener->children++;
  } else {
    st->limits = default_limits(MGFFI_PROTO_RAW);
  }
  st->last_read_ms = st->last_write_ms = mg_millis();
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
  if (wants(raw, MGFFI_EV_OPEN)) record(c, raw, MGFFI_EV_OPEN);
}

void Manager::on_close(mg_connection *c, ConnState *st) {
  if (!freeing_ && wants(st, MGFFI_EV_CLOSE) && record(c, st, MGFFI_EV_CLOSE) != nullptr &&
      st->ws && !st->ws->client) {
    // ws.request can still be made in on_close and after.
    back_->attach_data(st->ws->request_head.data(), st->ws->request_head.size());
  }
  c->fn_data = nullptr;
  st->http.file = FileSend();  // a body being sent: its file goes now
  forget_child(c, st);
  if (st->listener) {
    for (auto &id : listeners_) {
      if (id == c->id) {
        id = listeners_.back();
        listeners_.pop_back();
        break;
      }
    }
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

void Manager::on_error(mg_connection *c, ConnState *st, const char *msg) {
  if (!wants(st, MGFFI_EV_ERROR)) return;
  mgffi_event *e = record(c, st, MGFFI_EV_ERROR);
  if (e == nullptr) return;
  if (msg == nullptr) msg = "error";
  // Mongoose says only "socket error"; the socket knows why.
  int so_error = 0;
  socklen_t so_len = sizeof(so_error);
  char text[200];
  if (std::strcmp(msg, "socket error") == 0 && c->fd != nullptr &&
      getsockopt(sock_of(c), SOL_SOCKET, SO_ERROR, reinterpret_cast<char *>(&so_error), &so_len) ==
          0 &&
      so_error != 0) {
    std::snprintf(text, sizeof(text), "%s: %s", msg, sock_error_text(so_error).c_str());
    msg = text;
  } else if (c->is_tls_hs) {
    std::snprintf(text, sizeof(text), "TLS handshake failed (%s)", msg);
    msg = text;
  }
  back_->attach_data(msg, std::strlen(msg));
}

void Manager::on_event(mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_OPEN) {
    on_open(c);
    return;
  }
  ConnState *st = state_of(c);
  if (st == nullptr) return;
  switch (ev) {
    case MG_EV_POLL:  // the per-poll tick is never queued
      poll_now_ = *static_cast<std::uint64_t *>(ev_data);
      on_poll(c, st);
      return;
    case MG_EV_CLOSE: on_close(c, st); return;
    case MG_EV_ERROR: on_error(c, st, static_cast<const char *>(ev_data)); return;
    case MG_EV_READ:
      st->last_read_ms = poll_now_;
      if (st->ws) {
        on_ws_read(c, st);
      } else if (st->protocol == MGFFI_PROTO_HTTP && c->is_accepted) {
        on_http_read(c, st);
      } else if (st->protocol == MGFFI_PROTO_HTTP) {
        // An HTTP client: Mongoose's parser has the bytes.
        if (wants(st, MGFFI_EV_READ)) {
          mgffi_event *e = record(c, st, MGFFI_EV_READ);
          if (e != nullptr) e->value = *static_cast<long *>(ev_data);
        }
      } else {
        on_raw_read(c, st);
      }
      return;
    case MG_EV_WRITE:
      on_write(c, st, *static_cast<long *>(ev_data));
      if (st->http.out == HttpRequest::Out::kServing) file_pump(c, st);
      break;
    case MG_EV_ACCEPT:
      if (!admit(c, st)) return;
      if (st->tls) start_tls(c, st);
      break;
    case MG_EV_CONNECT:
      st->out_armed = false;  // Mongoose drops EPOLLOUT once connected
      // TLS starts here, in C: Lua would be too late for the handshake.
      if (st->tls && c->is_tls) start_tls(c, st);
      if (st->ws && st->ws->client && !st->ws->open) ws_send_request(c, st);
      break;
    case MG_EV_TLS_HS: st->out_armed = false; break;
    case MG_EV_HTTP_HDRS: return;  // client responses come whole
    case MG_EV_HTTP_MSG: {
      // An HTTP client's response (servers parse requests themselves).
      if (!wants(st, MGFFI_EV_HTTP_MSG)) return;
      mgffi_event *e = record(c, st, MGFFI_EV_HTTP_MSG);
      if (e == nullptr) return;
      HttpStore *store = back_->borrow_http_store();
      auto *hm = static_cast<mg_http_message *>(ev_data);
      if (store == nullptr || !store->assign(*hm, true)) {
        mg_error(c, "out of memory");
        return;
      }
      e->http = &store->view();
      e->value = store->view().status;
      return;
    }
    default: break;
  }
  if (!wants(st, ev)) return;
  mgffi_event *e = record(c, st, ev);
  if (e == nullptr) return;
  switch (ev) {
    case MG_EV_WRITE: e->value = *static_cast<long *>(ev_data); break;
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

// Every poll, for each connection in Mongoose's list.
void Manager::on_poll(mg_connection *c, ConnState *st) {
  // Mongoose's iotest has just armed EPOLLOUT for it (its can_write()).
  st->out_armed = c->send.len > 0 && !c->is_tls_hs;
  if (st->shutdown_pending) try_shutdown(c, st);
  if (st->http.out == HttpRequest::Out::kServing) file_on_poll(c, st);
  if (st->input_pending && ((st->hold & ~kHoldThrottle) == 0 || (st->ws && st->ws->closing))) {
    st->input_pending = false;
    if (st->ws) {
      ws_input(c, st);
    } else if (c->is_accepted && st->protocol == MGFFI_PROTO_HTTP) {
      http_input(c, st);
    }
  }
  if (st->ws && st->ws->pong_pending) ws_flush_pong(c, st);
  check_timeouts(c, st);
  if (Parking::idle(c, st, poll_now_)) parking_.may_want();
}

void Manager::check_timeouts(mg_connection *c, ConnState *st) {
  if (c->is_listening || c->is_closing) return;
  const std::uint64_t now = poll_now_;
  const std::uint64_t send_timeout = st->limit(MGFFI_LIMIT_SEND_TIMEOUT_MS);
  // A file's body being sent counts as queued output.
  const bool queued = c->send.len > 0 || st->http.file.active();
  if (send_timeout != 0 && queued && now > st->last_write_ms &&
      now - st->last_write_ms > send_timeout) {
    // The peer has accepted nothing for that long: what is queued would
    // never leave (draining would wait for it forever).
    on_error(c, st, "send timeout: the peer accepted no data");
    c->is_closing = 1;
    if (st->http.file.active()) file_end(c, st, false);
    return;
  }
  if (st->ws) {
    ws_timeouts(c, st);
  } else if (st->protocol == MGFFI_PROTO_HTTP && c->is_accepted) {
    http_timeouts(c, st);
  } else if (!c->is_udp) {
    const std::uint64_t idle = st->limit(MGFFI_LIMIT_IDLE_TIMEOUT_MS);
    const std::uint64_t last =
        st->last_read_ms > st->last_write_ms ? st->last_read_ms : st->last_write_ms;
    if (idle != 0 && now - last > idle) {
      // A peer that stopped reading what we send counts as idle too.
      if (c->send.len > 0) {
        c->is_closing = 1;
      } else {
        c->is_draining = 1;
      }
    }
  }
}

std::uint64_t Manager::next_deadline(const mg_connection *c, const ConnState *st) const {
  std::uint64_t due = UINT64_MAX;
  const std::uint64_t send_timeout = st->limit(MGFFI_LIMIT_SEND_TIMEOUT_MS);
  if (send_timeout != 0 && (c->send.len > 0 || st->http.file.active())) {
    due = st->last_write_ms + send_timeout + 1;
  }
  if (st->ws) {
    // A quiet WebSocket is pinged after half its idle time, closed after all.
    const std::uint64_t idle = st->limit(MGFFI_LIMIT_WS_IDLE_TIMEOUT_MS);
    if (idle != 0) due = earlier(due, st->last_read_ms + idle / 2 + 1);
  } else if (!c->is_udp) {
    const std::uint64_t idle = st->limit(MGFFI_LIMIT_IDLE_TIMEOUT_MS);
    const std::uint64_t last =
        st->last_read_ms > st->last_write_ms ? st->last_read_ms : st->last_write_ms;
    if (idle != 0) due = earlier(due, last + idle + 1);
  }
  const std::uint64_t request = st->limit(MGFFI_LIMIT_REQUEST_TIMEOUT_MS);
  if (request != 0 && st->request_started_ms != 0) {
    due = earlier(due, st->request_started_ms + request + 1);
  }
  if (st->ws && st->ws->message_started_ms != 0) {
    const std::uint64_t t = st->limit(MGFFI_LIMIT_WS_MESSAGE_TIMEOUT_MS);
    if (t != 0) due = earlier(due, st->ws->message_started_ms + t + 1);
  }
  return due;
}

int Manager::poll_hint() {
  if (!input_pending_.empty()) return 0;
  const std::uint64_t now = mg_millis();
  std::uint64_t due = parking_.next_deadline();
  int hint = -1;
  for (mg_connection *c = mgr_.conns; c != nullptr; c = c->next) {
    const ConnState *st = state_of(c);
    if (st == nullptr) continue;
    if (c->is_closing || c->is_connecting || st->shutdown_pending || st->input_pending ||
        (c->is_draining && c->send.len == 0) || (c->send.len > 0 && !st->out_armed)) {
      return 0;
    }
    // Mongoose's resolver needs polls to time out.
    if (c->is_resolving) hint = hint < 0 || hint > 50 ? 50 : hint;
    if (!c->is_listening) due = earlier(due, next_deadline(c, st));
  }
  for (std::uint64_t id : listeners_) {
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second.second->listener &&
        it->second.second->listener->accept_resume_ms != 0) {
      hint = hint < 0 || hint > 100 ? 100 : hint;
    }
  }
  if (due != UINT64_MAX) {
    const int wait = due <= now ? 1 : static_cast<int>(due - now < 60000 ? due - now : 60000);
    if (hint < 0 || wait < hint) hint = wait;
  }
  // Mongoose's own timers (DNS timeouts and the like).
  if (mgr_.timers != nullptr) hint = hint < 0 || hint > 100 ? 100 : hint;
  return hint;
}

int Manager::ws_set_deflate(mg_connection *c, const DeflateConfig &config) {
  ConnState *st = state_of(c);
  if (st->protocol != MGFFI_PROTO_HTTP)
    return fail(MGFFI_ERR_STATE, "not an HTTP or WebSocket connection");
  if (st->ws && (st->ws->open || !st->ws->client)) {
    return fail(MGFFI_ERR_STATE, "the WebSocket handshake is over: compression is agreed already");
  }
  if (st->ws && (!st->ws->hello || st->ws->hello->request.empty())) {
    return fail(MGFFI_ERR_STATE, "the WebSocket handshake request has gone out already");
  }
  st->deflate = std::make_shared<const DeflateConfig>(config);
  return MGFFI_OK;
}

int Manager::set_limit(mg_connection *c, int key, std::uint64_t value) {
  const LimitInfo *info = limit_info(key);
  if (info == nullptr) return fail(MGFFI_ERR_ARG, "unknown limit " + std::to_string(key));
  if (value > info->max) {
    return fail(MGFFI_ERR_ARG, std::string(info->name) + " exceeds the build's limit of " +
                                   std::to_string(info->max));
  }
  ConnState *st = state_of(c);
  st->set_limit(key, value);
  if (st->ws) ws_configure(st);
  return MGFFI_OK;
}

}  // namespace mgffi
