// The exported C ABI. Every function checks its arguments and catches every
// C++ exception: nothing but status codes crosses into the FFI.
#include <arpa/inet.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "manager.hpp"
#include "mongoose.h"
#include "mongoose_ffi.h"

using mgffi::Manager;

struct mgffi_manager {
  Manager impl;
};

namespace {

// Looks up a live connection, or returns the status to give back.
template <typename Fn>
int with_conn(mgffi_manager *m, uint64_t id, Fn &&fn) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  try {
    mg_connection *c = m->impl.find(id);
    if (c == nullptr) return MGFFI_ERR_NO_CONN;
    return fn(m->impl, c);
  } catch (const std::bad_alloc &) {
    return m->impl.fail(MGFFI_ERR_NOMEM, "out of memory");
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error");
  }
}

// Requires an accepted HTTP connection (a server-side request).
int require_http_server(Manager &mgr, mg_connection *c) {
  mgffi::ConnState *st = mgr.state_of(c);
  if (st == nullptr || st->protocol != MGFFI_PROTO_HTTP || !c->is_accepted || c->is_websocket) {
    return mgr.fail(MGFFI_ERR_STATE, "not an HTTP server connection");
  }
  return MGFFI_OK;
}

bool valid_status(int status) {
  return status >= 100 && status <= 999;
}

// Signals recorded by mgffi_signal_watch's handler: async-signal-safe flags.
volatile std::sig_atomic_t g_signal_pending[65];

extern "C" void record_signal(int signo) {
  if (signo > 0 && signo < 65) g_signal_pending[signo] = 1;
}

}  // namespace

extern "C" {

int mgffi_abi_version(void) {
  return MGFFI_ABI_VERSION;
}

const char *mgffi_mongoose_version(void) {
  return MG_VERSION;
}

mgffi_manager *mgffi_manager_new(void) {
  try {
    return new mgffi_manager();
  } catch (...) {
    return nullptr;
  }
}

void mgffi_manager_free(mgffi_manager *m) {
  delete m;
}

int mgffi_poll(mgffi_manager *m, int timeout_ms) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  try {
    return m->impl.poll(timeout_ms);
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error in poll");
  }
}

const mgffi_event *mgffi_events(const mgffi_manager *m) {
  return m == nullptr ? nullptr : m->impl.events();
}

int mgffi_manager_fd(const mgffi_manager *m) {
  return m == nullptr ? -1 : m->impl.epoll_fd();
}

int mgffi_poll_hint(const mgffi_manager *m) {
  if (m == nullptr) return -1;
  try {
    return m->impl.poll_hint();
  } catch (...) {
    return 0;
  }
}

const char *mgffi_last_error(const mgffi_manager *m) {
  return m == nullptr ? "no manager" : m->impl.last_error();
}

uint64_t mgffi_millis(void) {
  return mg_millis();
}

void mgffi_log_set_level(int level) {
  if (level < MG_LL_NONE) level = MG_LL_NONE;
  if (level > MG_LL_VERBOSE) level = MG_LL_VERBOSE;
  mg_log_set(level);
}

size_t mgffi_connection_count(const mgffi_manager *m) {
  return m == nullptr ? 0 : m->impl.connection_count();
}

size_t mgffi_connection_ids(const mgffi_manager *m, uint64_t *ids, size_t cap) {
  if (m == nullptr) return 0;
  return m->impl.connection_ids(ids, ids == nullptr ? 0 : cap);
}

int mgffi_listen(mgffi_manager *m, const char *url, int protocol, uint64_t *id) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  if (url == nullptr || id == nullptr)
    return m->impl.fail(MGFFI_ERR_ARG, "url and id are required");
  if (protocol != MGFFI_PROTO_RAW && protocol != MGFFI_PROTO_HTTP) {
    return m->impl.fail(MGFFI_ERR_ARG, "unknown protocol");
  }
  try {
    return m->impl.listen(url, protocol, id);
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error in listen");
  }
}

int mgffi_connect(mgffi_manager *m, const char *url, int protocol, uint64_t *id) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  if (url == nullptr || id == nullptr)
    return m->impl.fail(MGFFI_ERR_ARG, "url and id are required");
  if (protocol != MGFFI_PROTO_RAW && protocol != MGFFI_PROTO_HTTP) {
    return m->impl.fail(MGFFI_ERR_ARG, "unknown protocol");
  }
  try {
    return m->impl.connect(url, protocol, id);
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error in connect");
  }
}

int mgffi_set_event_mask(mgffi_manager *m, uint64_t id, uint32_t mask) {
  return with_conn(m, id, [mask](Manager &mgr, mg_connection *c) -> int {
    mgr.state_of(c)->event_mask = mask;
    return MGFFI_OK;
  });
}

int mgffi_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len) {
  if (buf == nullptr && len > 0)
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "buf is NULL");
  return with_conn(m, id, [buf, len](Manager &mgr, mg_connection *c) -> int {
    if (len == 0) return MGFFI_OK;
    // Bytes queued on a TCP listener would never leave, and would keep
    // poll_hint at "poll now" for good.
    if (c->is_listening && !c->is_udp)
      return mgr.fail(MGFFI_ERR_STATE, "cannot send on a listener");
    if (!mgffi::send_bytes(c, buf, len)) {
      // UDP sends at once: the kernel said no (too large, unreachable).
      if (c->is_udp) return mgr.datagram_failed();
      return mgr.fail(MGFFI_ERR_NOMEM, "out of memory");
    }
    return MGFFI_OK;
  });
}

int mgffi_close(mgffi_manager *m, uint64_t id, int immediately) {
  return with_conn(m, id, [immediately](Manager &mgr, mg_connection *c) -> int {
    mgffi::ConnState *st = mgr.state_of(c);
    st->closing_by_glue = true;
    if (immediately) {
      c->is_closing = 1;
      if (c->is_listening) mgr.release_listening_socket(c);
    } else {
      c->is_draining = 1;
    }
    return MGFFI_OK;
  });
}

int mgffi_pause_reading(mgffi_manager *m, uint64_t id, int paused) {
  return with_conn(m, id, [paused](Manager &mgr, mg_connection *c) -> int {
    return mgr.pause_reading(c, paused != 0);
  });
}

int mgffi_shutdown_write(mgffi_manager *m, uint64_t id) {
  return with_conn(m, id,
                   [](Manager &mgr, mg_connection *c) -> int { return mgr.shutdown_write(c); });
}

int mgffi_udp_send_to(mgffi_manager *m, uint64_t id, const mgffi_addr *to, const void *buf,
                      size_t len) {
  if (to == nullptr || (buf == nullptr && len > 0)) {
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "to and buf are required");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.udp_send_to(c, *to, buf, len);
  });
}

int mgffi_addr_parse(const char *text, mgffi_addr *out) {
  if (text == nullptr || out == nullptr) return MGFFI_ERR_ARG;
  std::memset(out, 0, sizeof(*out));
  const char *colon = std::strrchr(text, ':');
  if (colon == nullptr || colon == text) return MGFFI_ERR_ARG;
  char host[INET6_ADDRSTRLEN + 2];
  std::size_t host_len = static_cast<std::size_t>(colon - text);
  if (text[0] == '[') {
    if (host_len < 3 || text[host_len - 1] != ']') return MGFFI_ERR_ARG;
    text++;
    host_len -= 2;
  }
  if (host_len == 0 || host_len >= sizeof(host)) return MGFFI_ERR_ARG;
  std::memcpy(host, text, host_len);
  host[host_len] = '\0';
  char *end = nullptr;
  long port = std::strtol(colon + 1, &end, 10);
  if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535) return MGFFI_ERR_ARG;
  if (inet_pton(AF_INET, host, out->ip) == 1) {
    out->is_ip6 = 0;
  } else if (inet_pton(AF_INET6, host, out->ip) == 1) {
    out->is_ip6 = 1;
  } else {
    return MGFFI_ERR_ARG;
  }
  out->port = static_cast<uint16_t>(port);
  return MGFFI_OK;
}

int mgffi_get_conn_info(mgffi_manager *m, uint64_t id, mgffi_conn_info *info) {
  if (info == nullptr)
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "info is NULL");
  return with_conn(m, id, [info](Manager &mgr, mg_connection *c) -> int {
    mgffi::ConnState *st = mgr.state_of(c);
    std::memset(info, 0, sizeof(*info));
    info->id = c->id;
    info->listener_id = st->listener_id;
    info->flags = 0;
    if (c->is_listening) info->flags |= MGFFI_F_LISTENER;
    if (c->is_client) info->flags |= MGFFI_F_CLIENT;
    if (c->is_accepted) info->flags |= MGFFI_F_ACCEPTED;
    if (c->is_udp) info->flags |= MGFFI_F_UDP;
    if (c->is_websocket) info->flags |= MGFFI_F_WEBSOCKET;
    if (c->is_tls) info->flags |= MGFFI_F_TLS;
    info->event_mask = st->event_mask;
    info->send_queued = c->send.len;
    info->recv_buffered = c->recv.len;
    auto copy = [](const mg_addr &a, mgffi_addr *out) {
      std::memcpy(out->ip, a.addr.ip, sizeof(out->ip));
      out->port = mg_ntohs(a.port);
      out->is_ip6 = a.is_ip6 ? 1 : 0;
    };
    copy(c->loc, &info->local);
    copy(c->rem, &info->remote);
    info->fd = c->fd == nullptr ? -1 : static_cast<int32_t>(reinterpret_cast<size_t>(c->fd));
    info->is_closing = c->is_closing;
    info->is_draining = c->is_draining;
    info->response_pending = st->request_pending ? 1 : 0;
    info->reading_paused = c->is_full;
    return MGFFI_OK;
  });
}

size_t mgffi_addr_format(const mgffi_addr *addr, int with_port, char *buf, size_t len) {
  if (addr == nullptr || buf == nullptr || len == 0) return 0;
  char ip[INET6_ADDRSTRLEN];
  if (inet_ntop(addr->is_ip6 ? AF_INET6 : AF_INET, addr->ip, ip, sizeof(ip)) == nullptr) {
    buf[0] = '\0';
    return 0;
  }
  int n;
  if (!with_port) {
    n = std::snprintf(buf, len, "%s", ip);
  } else if (addr->is_ip6) {
    n = std::snprintf(buf, len, "[%s]:%u", ip, static_cast<unsigned>(addr->port));
  } else {
    n = std::snprintf(buf, len, "%s:%u", ip, static_cast<unsigned>(addr->port));
  }
  if (n < 0) return 0;
  return static_cast<size_t>(n) >= len ? len - 1 : static_cast<size_t>(n);
}

int mgffi_http_set_limits(mgffi_manager *m, uint64_t listener_id, uint64_t max_body,
                          uint64_t stream_threshold) {
  return with_conn(m, listener_id, [=](Manager &mgr, mg_connection *c) -> int {
    mgffi::ConnState *st = mgr.state_of(c);
    if (st->protocol != MGFFI_PROTO_HTTP)
      return mgr.fail(MGFFI_ERR_STATE, "not an HTTP connection");
    uint64_t limit = MG_MAX_RECV_SIZE - 65536;  // room for the head
    if (max_body > limit) {
      return mgr.fail(MGFFI_ERR_ARG, "max_body exceeds the build's limit of " +
                                         std::to_string(limit) +
                                         " bytes; stream larger bodies instead");
    }
    st->max_body = max_body == 0 ? MGFFI_DEFAULT_MAX_BODY : max_body;
    st->stream_threshold = stream_threshold;
    (void)c;
    return MGFFI_OK;
  });
}

int mgffi_set_limits(mgffi_manager *m, uint64_t id, uint32_t max_connections,
                     uint32_t idle_timeout_ms, uint32_t request_timeout_ms,
                     uint32_t max_header_size, uint32_t max_headers) {
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    mgffi::ConnState *st = mgr.state_of(c);
    if (max_header_size > MG_MAX_RECV_SIZE / 2) {
      return mgr.fail(MGFFI_ERR_ARG, "max_header_size is too large");
    }
    if (max_headers > MG_MAX_HTTP_HEADERS) {
      return mgr.fail(MGFFI_ERR_ARG, "max_headers exceeds the build's limit of " +
                                         std::to_string(MG_MAX_HTTP_HEADERS));
    }
    if (max_connections != 0) st->max_connections = max_connections;
    if (idle_timeout_ms != 0) st->idle_timeout_ms = idle_timeout_ms;
    if (request_timeout_ms != 0) st->request_timeout_ms = request_timeout_ms;
    if (max_header_size != 0) st->max_header_size = max_header_size;
    if (max_headers != 0) st->max_headers = max_headers;
    return MGFFI_OK;
  });
}

int mgffi_set_max_queue_bytes(mgffi_manager *m, uint64_t max_bytes) {
  if (m == nullptr || max_bytes == 0) return MGFFI_ERR_ARG;
  m->impl.set_max_queue_bytes(max_bytes);
  return MGFFI_OK;
}

int mgffi_http_reply(mgffi_manager *m, uint64_t id, int status, const char *headers,
                     size_t headers_len, const char *body, size_t body_len) {
  if ((headers == nullptr && headers_len > 0) || (body == nullptr && body_len > 0) ||
      !valid_status(status)) {
    return m == nullptr ? MGFFI_ERR_ARG
                        : m->impl.fail(MGFFI_ERR_ARG, "invalid status, headers or body");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_reply(c, status, headers, headers_len, body, body_len);
  });
}

int mgffi_http_begin_chunked(mgffi_manager *m, uint64_t id, int status, const char *headers,
                             size_t headers_len) {
  if ((headers == nullptr && headers_len > 0) || !valid_status(status)) {
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "invalid status or headers");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_begin_chunked(c, status, headers, headers_len);
  });
}

int mgffi_http_write_chunk(mgffi_manager *m, uint64_t id, const char *buf, size_t len) {
  if (buf == nullptr && len > 0)
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "buf is NULL");
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_write_chunk(c, buf, len);
  });
}

int mgffi_http_end_chunked(mgffi_manager *m, uint64_t id) {
  return with_conn(m, id, [](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_end_chunked(c);
  });
}

int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root_dir,
                         const char *extra_headers, const char *mime_types) {
  if (root_dir == nullptr)
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "root_dir is NULL");
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_serve(c, root_dir, true, extra_headers, mime_types);
  });
}

int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path,
                          const char *extra_headers, const char *mime_types) {
  if (path == nullptr)
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "path is NULL");
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.http_serve(c, path, false, extra_headers, mime_types);
  });
}

int mgffi_url_decode(const char *src, size_t src_len, char *dst, size_t dst_len, int form) {
  if ((src == nullptr && src_len > 0) || dst == nullptr || dst_len == 0) return -1;
  return mg_url_decode(src, src_len, dst, dst_len, form);
}

int mgffi_ws_upgrade(mgffi_manager *m, uint64_t id, const char *extra_headers, size_t extra_len) {
  if (extra_headers == nullptr && extra_len > 0) {
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "extra_headers is NULL");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : mgr.ws_upgrade(c, extra_headers, extra_len);
  });
}

int mgffi_ws_connect(mgffi_manager *m, const char *url, const char *extra_headers, size_t extra_len,
                     uint64_t *id) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  if (url == nullptr || id == nullptr || (extra_headers == nullptr && extra_len > 0)) {
    return m->impl.fail(MGFFI_ERR_ARG, "url and id are required");
  }
  try {
    return m->impl.ws_connect(url, extra_headers, extra_len, id);
  } catch (...) {
    return m->impl.fail(MGFFI_ERR_INTERNAL, "unexpected internal error in ws_connect");
  }
}

int mgffi_ws_set_max_message(mgffi_manager *m, uint64_t id, uint64_t max_message) {
  return with_conn(m, id, [max_message](Manager &mgr, mg_connection *c) -> int {
    mgffi::ConnState *st = mgr.state_of(c);
    if (st->protocol != MGFFI_PROTO_HTTP)
      return mgr.fail(MGFFI_ERR_STATE, "not an HTTP connection");
    st->max_ws_message = max_message == 0 ? MGFFI_DEFAULT_MAX_BODY : max_message;
    return MGFFI_OK;
  });
}

int mgffi_ws_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op) {
  if ((buf == nullptr && len > 0) || op < 0 || op > 15) {
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "invalid buffer or opcode");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    if (!c->is_websocket) return mgr.fail(MGFFI_ERR_STATE, "not a WebSocket connection");
    if (!mgffi::send_ws_frame(c, buf, len, op)) return mgr.fail(MGFFI_ERR_NOMEM, "out of memory");
    return MGFFI_OK;
  });
}

int mgffi_tls_set(mgffi_manager *m, uint64_t id, const char *ca, size_t ca_len, const char *cert,
                  size_t cert_len, const char *key, size_t key_len, const char *name,
                  size_t name_len, int skip_verification) {
  if ((ca == nullptr && ca_len > 0) || (cert == nullptr && cert_len > 0) ||
      (key == nullptr && key_len > 0) || (name == nullptr && name_len > 0)) {
    return m == nullptr ? MGFFI_ERR_ARG : m->impl.fail(MGFFI_ERR_ARG, "NULL buffer with a length");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    auto tls = std::make_shared<mgffi::TlsConfig>();
    if (ca_len > 0) tls->ca.assign(ca, ca_len);
    if (cert_len > 0) tls->cert.assign(cert, cert_len);
    if (key_len > 0) tls->key.assign(key, key_len);
    if (name_len > 0) tls->name.assign(name, name_len);
    tls->skip_verification = skip_verification != 0;
    return mgr.set_tls(c, std::move(tls));
  });
}

const char *mgffi_tls_backend(void) {
  return MG_TLS == MG_TLS_OPENSSL ? "openssl" : MG_TLS == MG_TLS_BUILTIN ? "builtin" : "none";
}

int mgffi_signal_watch(int signo) {
  if (signo <= 0 || signo >= 65) return MGFFI_ERR_ARG;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = record_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, nullptr) != 0) return MGFFI_ERR_ARG;
  return MGFFI_OK;
}

int mgffi_signal_take(void) {
  for (int s = 1; s < 65; s++) {
    if (g_signal_pending[s]) {
      g_signal_pending[s] = 0;
      return s;
    }
  }
  return 0;
}

}  // extern "C"
