// The C ABI of connections: opening, sending, closing, pausing, limits,
// addresses, TLS.
#include <cstdio>
#include <cstring>

#include "api_support.hpp"
#include "platform.hpp"

using mgffi::bad_arg;
using mgffi::bad_buf;
using mgffi::ConnState;
using mgffi::Manager;
using mgffi::with_conn;

namespace {

// Opens url (pointer + length) with open(url_as_c_string).
template <typename Fn>
int open_url(mgffi_manager *m, const char *url, size_t url_len, int protocol, uint64_t *id,
             Fn &&open) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  if (url == nullptr || id == nullptr || url_len == 0) return bad_arg(m, "url and id are required");
  if (protocol != MGFFI_PROTO_RAW && protocol != MGFFI_PROTO_HTTP) {
    return bad_arg(m, "unknown protocol");
  }
  return mgffi::guarded(m, "open", [&] { return open(std::string(url, url_len).c_str()); });
}

}  // namespace

extern "C" {

int mgffi_listen(mgffi_manager *m, const char *url, size_t url_len, int protocol, uint64_t *id) {
  return open_url(m, url, url_len, protocol, id,
                  [&](const char *u) { return m->impl.listen(u, protocol, id); });
}

int mgffi_connect(mgffi_manager *m, const char *url, size_t url_len, int protocol, uint64_t *id) {
  return open_url(m, url, url_len, protocol, id,
                  [&](const char *u) { return m->impl.connect(u, protocol, id); });
}

int mgffi_set_event_mask(mgffi_manager *m, uint64_t id, uint32_t mask) {
  return with_conn(m, id, [mask](Manager &, mg_connection *c) -> int {
    Manager::state_of(c)->event_mask = mask;
    return MGFFI_OK;
  });
}

int mgffi_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len) {
  if (bad_buf(buf, len)) return bad_arg(m, "buf is NULL");
  return with_conn(m, id,
                   [=](Manager &mgr, mg_connection *c) -> int { return mgr.send(c, buf, len); });
}

int mgffi_close(mgffi_manager *m, uint64_t id, int immediately) {
  return with_conn(
      m, id, [=](Manager &mgr, mg_connection *c) -> int { return mgr.close(c, immediately != 0); });
}

int mgffi_pause_reading(mgffi_manager *m, uint64_t id, int paused) {
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.pause_reading(c, paused != 0);
  });
}

int mgffi_shutdown_write(mgffi_manager *m, uint64_t id) {
  return with_conn(m, id,
                   [](Manager &mgr, mg_connection *c) -> int { return mgr.shutdown_write(c); });
}

int mgffi_udp_send_to(mgffi_manager *m, uint64_t id, const mgffi_addr *to, const void *buf,
                      size_t len) {
  if (to == nullptr || bad_buf(buf, len)) return bad_arg(m, "to and buf are required");
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.udp_send_to(c, *to, buf, len);
  });
}

int mgffi_get_conn_info(mgffi_manager *m, uint64_t id, mgffi_conn_info *info) {
  if (info == nullptr) return bad_arg(m, "info is NULL");
  if (m == nullptr) return MGFFI_ERR_ARG;
  mg_connection *c = m->impl.lookup(id);  // a query: a parked connection stays parked
  if (c == nullptr) return MGFFI_ERR_NO_CONN;
  const ConnState *st = Manager::state_of(c);
  std::memset(info, 0, sizeof(*info));
  info->id = c->id;
  info->listener_id = st->listener_id;
  if (c->is_listening) info->flags |= MGFFI_F_LISTENER;
  if (c->is_client) info->flags |= MGFFI_F_CLIENT;
  if (c->is_accepted) info->flags |= MGFFI_F_ACCEPTED;
  if (c->is_udp) info->flags |= MGFFI_F_UDP;
  if (c->is_websocket) info->flags |= MGFFI_F_WEBSOCKET;
  if (c->is_tls) info->flags |= MGFFI_F_TLS;
  info->event_mask = st->event_mask;
  info->send_queued = c->send.len + st->http.file.remaining();  // a file being sent counts
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
  info->response_pending = st->http.out == mgffi::HttpRequest::Out::kPending ? 1 : 0;
  info->reading_paused = (st->hold & mgffi::kHoldPaused) != 0 ? 1 : 0;
  info->reading_held = (st->hold & ~mgffi::kHoldPaused) != 0 ? 1 : 0;
  return MGFFI_OK;
}

int mgffi_set_limit(mgffi_manager *m, uint64_t id, int key, uint64_t value) {
  return with_conn(
      m, id, [=](Manager &mgr, mg_connection *c) -> int { return mgr.set_limit(c, key, value); });
}

int mgffi_get_limit(mgffi_manager *m, uint64_t id, int key, uint64_t *value) {
  if (value == nullptr || mgffi::limit_info(key) == nullptr) {
    return bad_arg(m, "unknown limit, or value is NULL");
  }
  if (m == nullptr) return MGFFI_ERR_ARG;
  mg_connection *c = m->impl.lookup(id);
  if (c == nullptr) return MGFFI_ERR_NO_CONN;
  *value = Manager::state_of(c)->limit(key);
  return MGFFI_OK;
}

int mgffi_limit_info(int key, int protocol, const char **name, uint64_t *default_value,
                     uint64_t *max_value) {
  const mgffi::LimitInfo *info = mgffi::limit_info(key);
  if (info == nullptr || (protocol != MGFFI_PROTO_RAW && protocol != MGFFI_PROTO_HTTP)) {
    return MGFFI_ERR_ARG;
  }
  if (name != nullptr) *name = info->name;
  if (default_value != nullptr) {
    *default_value = key == MGFFI_LIMIT_MAX_CONNECTIONS ? mgffi::default_max_connections()
                     : protocol == MGFFI_PROTO_HTTP     ? info->http_default
                                                        : info->raw_default;
  }
  if (max_value != nullptr) *max_value = info->max;
  return MGFFI_OK;
}

int mgffi_addr_parse(const char *text, size_t len, mgffi_addr *out) {
  if (text == nullptr || out == nullptr || len == 0) return MGFFI_ERR_ARG;
  std::memset(out, 0, sizeof(*out));
  char buf[INET6_ADDRSTRLEN + 16];
  if (len >= sizeof(buf)) return MGFFI_ERR_ARG;
  std::memcpy(buf, text, len);
  buf[len] = '\0';
  const char *colon = std::strrchr(buf, ':');
  if (colon == nullptr || colon == buf) return MGFFI_ERR_ARG;
  char host[INET6_ADDRSTRLEN + 2];
  std::size_t host_len = static_cast<std::size_t>(colon - buf);
  const char *start = buf;
  if (buf[0] == '[') {
    if (host_len < 3 || buf[host_len - 1] != ']') return MGFFI_ERR_ARG;
    start++;
    host_len -= 2;
  }
  if (host_len == 0 || host_len >= sizeof(host)) return MGFFI_ERR_ARG;
  std::memcpy(host, start, host_len);
  host[host_len] = '\0';
  char *end = nullptr;
  const long port = std::strtol(colon + 1, &end, 10);
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

int mgffi_addr_format(const mgffi_addr *addr, int with_port, char *buf, size_t len) {
  if (addr == nullptr || buf == nullptr || len == 0) return MGFFI_ERR_ARG;
  char ip[INET6_ADDRSTRLEN];
  if (inet_ntop(addr->is_ip6 ? AF_INET6 : AF_INET, addr->ip, ip, sizeof(ip)) == nullptr) {
    buf[0] = '\0';
    return MGFFI_ERR_ARG;
  }
  int n;
  if (!with_port) {
    n = std::snprintf(buf, len, "%s", ip);
  } else if (addr->is_ip6) {
    n = std::snprintf(buf, len, "[%s]:%u", ip, static_cast<unsigned>(addr->port));
  } else {
    n = std::snprintf(buf, len, "%s:%u", ip, static_cast<unsigned>(addr->port));
  }
  if (n < 0) return MGFFI_ERR_ARG;
  if (static_cast<size_t>(n) >= len) return MGFFI_ERR_SPACE;
  return n;
}

int mgffi_tls_set(mgffi_manager *m, uint64_t id, const char *ca, size_t ca_len, const char *cert,
                  size_t cert_len, const char *key, size_t key_len, const char *name,
                  size_t name_len, int skip_verification) {
  if (bad_buf(ca, ca_len) || bad_buf(cert, cert_len) || bad_buf(key, key_len) ||
      bad_buf(name, name_len)) {
    return bad_arg(m, "NULL buffer with a length");
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

}  // extern "C"
