// A copy of one HTTP message that outlives the receive buffer: a request
// built piece by piece as it arrives (head, body, trailers), or a whole
// parsed response. Lua reads it later, and replies (serve_dir, ws_upgrade)
// may come later still, so the store keeps the bytes and both views of
// them: the FFI view (mgffi_http_message) and Mongoose's own
// (mg_http_message, for Mongoose functions that take one).
#pragma once

#include <cstdint>

#include "byte_buffer.hpp"
#include "mongoose.h"
#include "mongoose_ffi.h"

namespace mgffi {

// The FFI view of a message Mongoose's parser split (same bytes).
void fill_ffi_view(const mg_http_message &hm, std::uint64_t content_length,
                   mgffi_http_message *out);

class HttpStore {
 public:
  static constexpr std::size_t kMaxTrailers = 16;

  // Starts a request from its parsed head (hm points into the receive
  // buffer), with room for body_hint bytes of body. False on OOM.
  bool begin(const mg_http_message &hm, std::size_t body_hint);
  bool append_body(const void *p, std::size_t n);
  // Raw trailer lines ("Name: value\r\n"), parsed by finish().
  bool append_trailers(const void *p, std::size_t n);
  // Fixes the views once everything has arrived. content_length: the
  // announced length (or the body's). False when a trailer line is not
  // "token: value".
  bool finish(std::uint64_t content_length);

  // Copies a whole parsed message (a response, or a WebSocket handshake
  // reply): head and, unless with_body is false, body. False on OOM.
  bool assign(const mg_http_message &src, bool with_body);

  const mgffi_http_message &view() const { return view_; }
  mg_http_message &mongoose_view() { return hm_; }
  bool owns(const mg_http_message *hm) const { return hm == &hm_; }
  std::size_t capacity() const { return bytes_.capacity(); }
  std::size_t body_size() const { return body_len_; }
  // Forgets the body received so far (it went to Lua as a stream).
  void drop_body() {
    bytes_.truncate(head_len_);
    body_len_ = 0;
  }
  void release() {
    bytes_.release();
    clear_views();
  }

 private:
  void clear_views();
  void rebase_to(char *base);
  void fill_view(std::uint64_t content_length);

  ByteBuffer bytes_;  // head, body, then raw trailers
  std::size_t head_len_ = 0;
  std::size_t body_len_ = 0;
  std::size_t trailer_raw_ = 0;
  char *base_ = nullptr;  // where hm_'s views point
  mg_http_message hm_{};
  mgffi_http_message view_{};
  mgffi_header trailers_[kMaxTrailers] = {};
};

}  // namespace mgffi
