#include "http_store.hpp"

#include <cstdint>
#include <cstring>

namespace mgffi {

namespace {

// Moves a view of src's head onto the same bytes in the copy at base. An
// empty value keeps a (valid) pointer: Mongoose hands such values to memcpy.
mg_str rebase(const mg_str &s, const char *old_base, char *new_base) {
  if (s.buf == nullptr) return mg_str{nullptr, 0};
  return mg_str{new_base + (s.buf - old_base), s.len};
}

mgffi_str to_ffi(const mg_str &s) {
  return mgffi_str{s.buf, s.len};
}

}  // namespace

bool HttpStore::assign(const mg_http_message &src, bool with_body) {
  const std::size_t head_len = src.head.len;
  // A response without Content-Length announces an unbounded body (~0).
  const bool unbounded = src.body.len == static_cast<std::size_t>(-1);
  const std::size_t body_len = with_body && !unbounded ? src.body.len : 0;
  bytes_.clear();
  if (!bytes_.reserve(head_len + body_len + 1)) return false;
  bytes_.append(src.head.buf, head_len);
  if (body_len > 0) bytes_.append(src.body.buf, body_len);
  char *base = bytes_.data();
  const char *old = src.head.buf;

  std::memset(&hm_, 0, sizeof(hm_));
  hm_.method = rebase(src.method, old, base);
  hm_.uri = rebase(src.uri, old, base);
  hm_.query = rebase(src.query, old, base);
  hm_.proto = rebase(src.proto, old, base);
  for (std::size_t i = 0; i < MG_MAX_HTTP_HEADERS; i++) {
    if (src.headers[i].name.len == 0) break;
    hm_.headers[i].name = rebase(src.headers[i].name, old, base);
    hm_.headers[i].value = rebase(src.headers[i].value, old, base);
  }
  hm_.head = mg_str{base, head_len};
  hm_.body = mg_str{base + head_len, body_len};
  hm_.message = mg_str{base, head_len + body_len};

  view_.method = to_ffi(hm_.method);
  view_.uri = to_ffi(hm_.uri);
  view_.query = to_ffi(hm_.query);
  view_.proto = to_ffi(hm_.proto);
  view_.head = to_ffi(hm_.head);
  view_.body = to_ffi(hm_.body);
  view_.content_length = src.body.len == static_cast<size_t>(-1) ? 0 : src.body.len;
  view_.status = 0;
  if (src.method.len > 5 && std::strncmp(src.method.buf, "HTTP/", 5) == 0) {
    view_.status = mg_http_status(&hm_);
  }
  std::uint32_t n = 0;
  while (n < MG_MAX_HTTP_HEADERS && n < MGFFI_MAX_HEADERS && hm_.headers[n].name.len > 0) {
    view_.headers[n].name = to_ffi(hm_.headers[n].name);
    view_.headers[n].value = to_ffi(hm_.headers[n].value);
    n++;
  }
  view_.header_count = n;
  return true;
}

}  // namespace mgffi
