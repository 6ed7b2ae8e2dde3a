// A copy of one parsed HTTP message that outlives Mongoose's receive buffer.
// Mongoose frees a request's bytes as soon as its handler returns; Lua reads
// the request later, and replies (serve_dir, ws_upgrade) may come later
// still, so the glue keeps the bytes and both views of them: the FFI view
// (mgffi_http_message) and Mongoose's own (mg_http_message).
#pragma once

#include "byte_buffer.hpp"
#include "mongoose.h"
#include "mongoose_ffi.h"

namespace mgffi {

class HttpStore {
 public:
  // Copies head and (unless with_body is false) body of src. Returns false
  // on OOM. Reuses the capacity of previous copies.
  bool assign(const mg_http_message &src, bool with_body);

  const mgffi_http_message &view() const { return view_; }
  mg_http_message &mongoose_view() { return hm_; }
  bool owns(const mg_http_message *hm) const { return hm == &hm_; }
  std::size_t capacity() const { return bytes_.capacity(); }
  void release() {
    bytes_.release();
    view_ = mgffi_http_message{};
    hm_ = mg_http_message{};
  }

 private:
  ByteBuffer bytes_;
  mgffi_http_message view_{};
  mg_http_message hm_{};
};

}  // namespace mgffi
