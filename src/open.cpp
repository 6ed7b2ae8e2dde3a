// Opening listeners and client connections: one path for every protocol.
// HTTP listeners are plain Mongoose listeners: the glue parses requests
// itself (http_server.cpp). HTTP clients use Mongoose's response parser.
#include <cerrno>
#include <cstring>

#include "manager.hpp"
#include "platform.hpp"

namespace mgffi {

int Manager::listen(const char *url, int protocol, std::uint64_t *id) {
  clear_sock_errno();
  mg_connection *c = mg_listen(&mgr_, url, on_event_trampoline, nullptr);
  if (c == nullptr) {
    const int err = sock_errno();
    const std::string why = err != 0 ? sock_error_text(err) : "invalid URL or address";
    return fail(MGFFI_ERR_LISTEN, std::string("cannot listen on ") + url + ": " + why);
  }
  ConnState *st = state_of(c);
  std::unique_ptr<ListenerState> ls;
  if (st != nullptr && !c->is_udp) ls.reset(new (std::nothrow) ListenerState());
  if (st == nullptr || (!c->is_udp && !ls)) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  try {
    if (!c->is_udp) listeners_.push_back(c->id);
  } catch (const std::bad_alloc &) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  // Mongoose sizes recvfrom's address buffer from c->rem: make it IPv6 on
  // an IPv6 UDP listener, or the first sender's address is cut off.
  if (c->is_udp && c->loc.is_ip6) c->rem.is_ip6 = true;
  st->listener = std::move(ls);
  st->protocol = static_cast<std::uint8_t>(protocol);
  st->event_mask = default_mask(protocol);
  st->limits = default_limits(protocol);
  if (protocol == MGFFI_PROTO_HTTP) {
    // WebSockets it upgrades offer permessage-deflate unless told not to.
    static const auto kDeflate = [] {
      auto d = std::make_shared<DeflateConfig>();
      d->enabled = true;
      return std::shared_ptr<const DeflateConfig>(d);
    }();
    st->deflate = kDeflate;
  }
  *id = c->id;
  return MGFFI_OK;
}

int Manager::connect(const char *url, int protocol, std::uint64_t *id) {
  errno = 0;
  mg_connection *c = protocol == MGFFI_PROTO_HTTP
                         ? mg_http_connect(&mgr_, url, on_event_trampoline, nullptr)
                         : mg_connect(&mgr_, url, on_event_trampoline, nullptr);
  if (c == nullptr) return fail(MGFFI_ERR_CONNECT, std::string("cannot connect to ") + url);
  ConnState *st = state_of(c);
  if (st == nullptr) {
    c->is_closing = 1;
    return fail(MGFFI_ERR_NOMEM, "out of memory");
  }
  st->protocol = static_cast<std::uint8_t>(protocol);
  st->event_mask = default_mask(protocol);
  st->limits = default_limits(MGFFI_PROTO_RAW);  // no HTTP server timeouts on a client
  *id = c->id;
  return MGFFI_OK;
}

}  // namespace mgffi
