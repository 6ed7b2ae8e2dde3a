// The C ABI of HTTP replies and WebSocket connections.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "api_support.hpp"
#include "http_store.hpp"
#include "mime.hpp"
#include "static_path.hpp"

using mgffi::bad_arg;
using mgffi::bad_buf;
using mgffi::Manager;
using mgffi::with_conn;

namespace {

// Requires an accepted HTTP connection (a server-side request).
int require_http_server(Manager &mgr, mg_connection *c) {
  const mgffi::ConnState *st = Manager::state_of(c);
  if (st->protocol != MGFFI_PROTO_HTTP || !c->is_accepted || c->is_websocket) {
    return mgr.fail(MGFFI_ERR_STATE, "not an HTTP server connection");
  }
  return MGFFI_OK;
}

// Calls fn on an accepted HTTP connection.
template <typename Fn>
int with_http_server(mgffi_manager *m, uint64_t id, Fn &&fn) {
  return with_conn(m, id, [&](Manager &mgr, mg_connection *c) -> int {
    const int rc = require_http_server(mgr, c);
    return rc != MGFFI_OK ? rc : fn(mgr, c);
  });
}

bool valid_status(int status) {
  return status >= 100 && status <= 999;
}

int serve(mgffi_manager *m, uint64_t id, bool is_dir, const char *target, size_t target_len,
          const mgffi_serve_opts *opts, uint64_t *body_len) {
  if (body_len != nullptr) *body_len = 0;
  if (target == nullptr || target_len == 0) return bad_arg(m, "a path is required");
  static const mgffi_serve_opts kDefaults{};
  const mgffi_serve_opts &o = opts != nullptr ? *opts : kDefaults;
  if (bad_buf(o.headers.ptr, o.headers.len) || bad_buf(o.path.ptr, o.path.len) ||
      bad_buf(o.index.ptr, o.index.len) || bad_buf(o.mime_types.ptr, o.mime_types.len) ||
      bad_buf(o.cache_control.ptr, o.cache_control.len) ||
      bad_buf(o.precompressed.ptr, o.precompressed.len) ||
      bad_buf(o.spa_fallback.ptr, o.spa_fallback.len)) {
    return bad_arg(m, "an option string is NULL with a length");
  }
  const std::string_view mime(o.mime_types.ptr, o.mime_types.len);
  const std::string_view rules(o.cache_control.ptr, o.cache_control.len);
  if (!mgffi::valid_mime_overrides(mime)) return bad_arg(m, "mime_types must be \"ext=type,...\"");
  if (!mgffi::valid_cache_rules(rules)) {
    return bad_arg(m, "cache_control must be lines of \"pattern\\tvalue\"");
  }
  const std::string_view index(o.index.ptr, o.index.len);
  if (mgffi::each_list_item(index,
                            [](std::string_view name) { return !mgffi::valid_file_name(name); })) {
    return bad_arg(m, "index names must be file names");
  }
  const std::string_view fallback(o.spa_fallback.ptr, o.spa_fallback.len);
  if (!fallback.empty() && (fallback.find('\0') != std::string_view::npos ||
                            mgffi::has_dot_segment(fallback) || fallback.front() == '/')) {
    return bad_arg(m, "spa_fallback must be a path under the root");
  }
  return with_http_server(m, id, [&](Manager &mgr, mg_connection *c) -> int {
    return mgr.http_serve(c, std::string_view(target, target_len), is_dir, o, body_len);
  });
}

}  // namespace

extern "C" {

int mgffi_http_reply(mgffi_manager *m, uint64_t id, int status, const char *headers,
                     size_t headers_len, const char *body, size_t body_len) {
  if (bad_buf(headers, headers_len) || bad_buf(body, body_len) || !valid_status(status)) {
    return bad_arg(m, "invalid status, headers or body");
  }
  return with_http_server(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.http_reply(c, status, headers, headers_len, body, body_len);
  });
}

int mgffi_http_begin_chunked(mgffi_manager *m, uint64_t id, int status, const char *headers,
                             size_t headers_len) {
  if (bad_buf(headers, headers_len) || !valid_status(status)) {
    return bad_arg(m, "invalid status or headers");
  }
  return with_http_server(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.http_begin_chunked(c, status, headers, headers_len);
  });
}

int mgffi_http_write_chunk(mgffi_manager *m, uint64_t id, const char *buf, size_t len) {
  if (bad_buf(buf, len)) return bad_arg(m, "buf is NULL");
  return with_http_server(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.http_write_chunk(c, buf, len);
  });
}

int mgffi_http_end_chunked(mgffi_manager *m, uint64_t id) {
  return with_http_server(
      m, id, [](Manager &mgr, mg_connection *c) -> int { return mgr.http_end_chunked(c); });
}

int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root, size_t root_len,
                         const mgffi_serve_opts *opts, uint64_t *body_len) {
  return serve(m, id, true, root, root_len, opts, body_len);
}

int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path, size_t path_len,
                          const mgffi_serve_opts *opts, uint64_t *body_len) {
  return serve(m, id, false, path, path_len, opts, body_len);
}

int mgffi_set_file_cache(mgffi_manager *m, uint32_t max_entries, uint32_t valid_ms,
                         uint32_t inactive_ms) {
  return mgffi::guarded(m, "set_file_cache",
                        [&] { return m->impl.set_file_cache(max_entries, valid_ms, inactive_ms); });
}

int mgffi_url_decode(const char *src, size_t src_len, char *dst, size_t dst_len, int form) {
  if (bad_buf(src, src_len) || dst == nullptr || dst_len == 0) return MGFFI_ERR_ARG;
  const int n = mg_url_decode(src, src_len, dst, dst_len, form);
  if (n >= 0) return n;
  // Mongoose fails alike on a bad escape and on a short dst.
  for (std::size_t i = 0; i < src_len; i++) {
    if (src[i] == '%' &&
        (i + 2 >= src_len || !std::isxdigit(static_cast<unsigned char>(src[i + 1])) ||
         !std::isxdigit(static_cast<unsigned char>(src[i + 2])))) {
      return MGFFI_ERR_ARG;
    }
  }
  return MGFFI_ERR_SPACE;
}

int mgffi_http_parse_head(const char *p, size_t len, mgffi_http_message *out) {
  if (bad_buf(p, len) || out == nullptr || len > INT32_MAX) return MGFFI_ERR_ARG;
  mg_http_message hm;
  const int n = mg_http_parse(p, len, &hm);
  if (n < 0) return MGFFI_ERR_ARG;
  *out = mgffi_http_message{};
  if (n > 0) {
    mgffi::fill_ffi_view(hm, 0, out);
    out->body = mgffi_str{p + n, 0};  // the head only: what follows is not read
  }
  return n;
}

int mgffi_ws_upgrade(mgffi_manager *m, uint64_t id, const char *extra_headers, size_t extra_len) {
  if (bad_buf(extra_headers, extra_len)) return bad_arg(m, "extra_headers is NULL");
  return with_http_server(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.ws_upgrade(c, extra_headers, extra_len);
  });
}

int mgffi_ws_request_head(mgffi_manager *m, uint64_t id, mgffi_str *head) {
  if (head == nullptr) return bad_arg(m, "head is NULL");
  if (m == nullptr) return MGFFI_ERR_ARG;
  mg_connection *c = m->impl.lookup(id);  // a query: a parked connection stays parked
  if (c == nullptr) return MGFFI_ERR_NO_CONN;
  const mgffi::ConnState *st = Manager::state_of(c);
  if (!st->ws || st->ws->client) return m->impl.fail(MGFFI_ERR_STATE, "not a server WebSocket");
  *head = mgffi_str{st->ws->request_head.data(), st->ws->request_head.size()};
  return MGFFI_OK;
}

int mgffi_ws_connect(mgffi_manager *m, const char *url, size_t url_len, const char *extra_headers,
                     size_t extra_len, uint64_t *id) {
  if (m == nullptr) return MGFFI_ERR_ARG;
  if (url == nullptr || url_len == 0 || id == nullptr || bad_buf(extra_headers, extra_len)) {
    return bad_arg(m, "url and id are required");
  }
  return mgffi::guarded(m, "ws_connect", [&] {
    return m->impl.ws_connect(std::string(url, url_len).c_str(), extra_headers, extra_len, id);
  });
}

int mgffi_ws_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op) {
  if (bad_buf(buf, len)) return bad_arg(m, "buf is NULL");
  if (op != 1 && op != 2 && op != 8 && op != 9 && op != 10) {
    return bad_arg(m, "op must be 1 (text), 2 (binary), 8 (close), 9 (ping) or 10 (pong)");
  }
  if (op >= 8 && len > 125) return bad_arg(m, "a control frame carries at most 125 bytes");
  return with_conn(
      m, id, [=](Manager &mgr, mg_connection *c) -> int { return mgr.ws_send(c, buf, len, op); });
}

int mgffi_ws_send_frame(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op,
                        int fin) {
  if (bad_buf(buf, len)) return bad_arg(m, "buf is NULL");
  if (op < 0 || op > 2) return bad_arg(m, "op must be 1 (text), 2 (binary) or 0 (continuation)");
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    return mgr.ws_send_frame(c, buf, len, op, fin != 0);
  });
}

int mgffi_ws_set_deflate(mgffi_manager *m, uint64_t id, const mgffi_ws_deflate *config) {
  if (config == nullptr) return bad_arg(m, "config is NULL");
  if (config->level < 0 || config->level > 9 ||
      (config->enabled && (config->max_window_bits < 9 || config->max_window_bits > 15))) {
    return bad_arg(m, "deflate level must be 0-9 and max_window_bits 9-15");
  }
  return with_conn(m, id, [=](Manager &mgr, mg_connection *c) -> int {
    mgffi::DeflateConfig d;
    d.enabled = config->enabled != 0;
    d.level = config->level;
    d.context_takeover = config->context_takeover != 0;
    d.max_window_bits = d.enabled ? static_cast<int>(config->max_window_bits) : 15;
    d.min_size = static_cast<std::size_t>(config->min_size);
    return mgr.ws_set_deflate(c, d);
  });
}

}  // extern "C"
