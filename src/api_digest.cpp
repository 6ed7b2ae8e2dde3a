// The C ABI of the message digests: Mongoose's MD5 and SHA-1, as pure
// functions over caller-owned buffers (ngx.md5, ngx.sha1_bin and
// ngx.hmac_sha1 of mongoose.ngx are built on them).
#include "mongoose.h"
#include "mongoose_ffi.h"

namespace {

// The checks both digests make, then hash(p, n, out).
template <typename Hash>
int digest(const void *data, size_t len, uint8_t *out, size_t out_len, size_t size, Hash hash) {
  if ((data == nullptr && len > 0) || out == nullptr) return MGFFI_ERR_ARG;
  if (out_len < size) return MGFFI_ERR_SPACE;
  hash(static_cast<const unsigned char *>(data), len, out);
  return MGFFI_OK;
}

}  // namespace

extern "C" {

int mgffi_md5(const void *data, size_t len, uint8_t *out, size_t out_len) {
  return digest(data, len, out, out_len, 16, [](const unsigned char *p, size_t n, uint8_t *o) {
    mg_md5_ctx ctx;
    mg_md5_init(&ctx);
    mg_md5_update(&ctx, p, n);
    mg_md5_final(&ctx, o);
  });
}

int mgffi_sha1(const void *data, size_t len, uint8_t *out, size_t out_len) {
  return digest(data, len, out, out_len, 20, [](const unsigned char *p, size_t n, uint8_t *o) {
    mg_sha1_ctx ctx;
    mg_sha1_init(&ctx);
    mg_sha1_update(&ctx, p, n);
    mg_sha1_final(o, &ctx);
  });
}

}  // extern "C"
