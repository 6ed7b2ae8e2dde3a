// TLS: the parameters a listener or client was given (mgffi_tls_set), and
// the handshake started in C at ACCEPT or CONNECT (Lua would be too late).
#include "manager.hpp"

namespace mgffi {

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
  // A listener, or a client still connecting, starts TLS at its ACCEPT or
  // CONNECT. A plain TCP client already connected (a cosocket's
  // sslhandshake) starts it now: Mongoose sends the ClientHello from
  // mg_tls_handshake, then drives the handshake as data arrives.
  if (c->is_client && !c->is_tls && !c->is_udp && !c->is_connecting && !c->is_resolving &&
      !c->is_closing) {
    c->is_tls = 1;
    start_tls(c, st);
    if (c->is_tls_hs) mg_tls_handshake(c);
  }
  return MGFFI_OK;
}

}  // namespace mgffi
