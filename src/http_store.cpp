#include "http_store.hpp"

#include <cstdint>
#include <cstring>

#include "http_parse.hpp"

namespace mgffi {

namespace {

// Moves a view onto the same bytes at another base. An empty value keeps a
// (valid) pointer: Mongoose hands such values to memcpy.
mg_str rebase(const mg_str &s, const char *old_base, char *new_base) {
  if (s.buf == nullptr) return mg_str{nullptr, 0};
  return mg_str{new_base + (s.buf - old_base), s.len};
}

mgffi_str to_ffi(const mg_str &s) {
  return mgffi_str{s.buf, s.len};
}

}  // namespace

void HttpStore::clear_views() {
  hm_ = mg_http_message{};
  view_ = mgffi_http_message{};
  head_len_ = body_len_ = trailer_raw_ = 0;
  base_ = nullptr;
}

// Points hm_'s views at base (the store's bytes after a move).
void HttpStore::rebase_to(char *base) {
  if (base == base_) return;
  const char *old = base_;
  hm_.method = rebase(hm_.method, old, base);
  hm_.uri = rebase(hm_.uri, old, base);
  hm_.query = rebase(hm_.query, old, base);
  hm_.proto = rebase(hm_.proto, old, base);
  for (mg_http_header &h : hm_.headers) {
    if (h.name.len == 0) break;
    h.name = rebase(h.name, old, base);
    h.value = rebase(h.value, old, base);
  }
  base_ = base;
}

bool HttpStore::begin(const mg_http_message &hm, std::size_t body_hint) {
  bytes_.clear();
  clear_views();
  head_len_ = hm.head.len;
  if (!bytes_.reserve(head_len_ + body_hint + 1)) return false;
  bytes_.append(hm.head.buf, head_len_);
  hm_ = hm;
  base_ = const_cast<char *>(hm.head.buf);
  rebase_to(bytes_.data());
  return true;
}

bool HttpStore::append_body(const void *p, std::size_t n) {
  if (bytes_.append(p, n) == ByteBuffer::npos) return false;
  body_len_ += n;
  rebase_to(bytes_.data());
  return true;
}

bool HttpStore::append_trailers(const void *p, std::size_t n) {
  if (bytes_.append(p, n) == ByteBuffer::npos) return false;
  trailer_raw_ += n;
  rebase_to(bytes_.data());
  return true;
}

void fill_ffi_view(const mg_http_message &hm, std::uint64_t content_length,
                   mgffi_http_message *out) {
  out->method = to_ffi(hm.method);
  out->uri = to_ffi(hm.uri);
  out->query = to_ffi(hm.query);
  out->proto = to_ffi(hm.proto);
  out->head = to_ffi(hm.head);
  out->body = to_ffi(hm.body);
  out->content_length = content_length;
  out->status = 0;
  if (hm.method.len > 5 && std::strncmp(hm.method.buf, "HTTP/", 5) == 0) {
    out->status = mg_http_status(&hm);
  }
  std::uint32_t n = 0;
  while (n < MG_MAX_HTTP_HEADERS && n < MGFFI_MAX_HEADERS && hm.headers[n].name.len > 0) {
    out->headers[n].name = to_ffi(hm.headers[n].name);
    out->headers[n].value = to_ffi(hm.headers[n].value);
    n++;
  }
  out->header_count = n;
  out->trailer_count = 0;
  out->trailers = nullptr;
}

void HttpStore::fill_view(std::uint64_t content_length) {
  char *base = bytes_.data();
  hm_.head = mg_str{base, head_len_};
  hm_.body = mg_str{base + head_len_, body_len_};
  hm_.message = mg_str{base, head_len_ + body_len_};
  fill_ffi_view(hm_, content_length, &view_);
}

bool HttpStore::finish(std::uint64_t content_length) {
  fill_view(content_length);
  // Trailer lines: "name: value\r\n" each (the decoder checked the bytes).
  const char *p = bytes_.data() + head_len_ + body_len_;
  const char *end = p + trailer_raw_;
  std::uint32_t n = 0;
  while (p < end) {
    const char *eol = static_cast<const char *>(std::memchr(p, '\r', end - p));
    if (eol == nullptr) eol = end;
    const char *colon = static_cast<const char *>(std::memchr(p, ':', eol - p));
    if (colon == nullptr || !is_token(mg_str_n(p, colon - p))) return false;
    const char *v = colon + 1;
    const char *v_end = eol;
    while (v < v_end && (*v == ' ' || *v == '\t')) v++;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) v_end--;
    if (n < kMaxTrailers) {
      trailers_[n].name = mgffi_str{p, static_cast<std::size_t>(colon - p)};
      trailers_[n].value = mgffi_str{v, static_cast<std::size_t>(v_end - v)};
      n++;
    }
    p = eol + 2 <= end ? eol + 2 : end;
  }
  view_.trailer_count = n;
  view_.trailers = n > 0 ? trailers_ : nullptr;
  return true;
}

bool HttpStore::assign(const mg_http_message &src, bool with_body) {
  // A response without Content-Length announces an unbounded body (~0).
  const bool unbounded = src.body.len == static_cast<std::size_t>(-1);
  const std::size_t body_len = with_body && !unbounded ? src.body.len : 0;
  if (!begin(src, body_len)) return false;
  if (body_len > 0 && !append_body(src.body.buf, body_len)) return false;
  fill_view(unbounded ? 0 : src.body.len);
  return true;
}

}  // namespace mgffi
