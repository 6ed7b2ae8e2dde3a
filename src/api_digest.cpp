// The C ABI of the message digests: Mongoose's MD5 and SHA-1, as pure
// functions over caller-owned buffers (ngx.md5, ngx.sha1_bin and
// ngx.hmac_sha1 of mongoose.ngx are built on them).
#include "mongoose.h"
#include "mongoose_ffi.h"

extern "C" {

int mgffi_md5(const void *data, size_t len, uint8_t *out, size_t out_len) {
  if ((data == nullptr && len > 0) || out == nullptr) return MGFFI_ERR_ARG;
  if (out_len < 16) return MGFFI_ERR_SPACE;
  mg_md5_ctx ctx;
  mg_md5_init(&ctx);
  mg_md5_update(&ctx, static_cast<const unsigned char *>(data), len);
  mg_md5_final(&ctx, out);
  return MGFFI_OK;
}

int mgffi_sha1(const void *data, size_t len, uint8_t *out, size_t out_len) {
  if ((data == nullptr && len > 0) || out == nullptr) return MGFFI_ERR_ARG;
  if (out_len < 20) return MGFFI_ERR_SPACE;
  mg_sha1_ctx ctx;
  mg_sha1_init(&ctx);
  mg_sha1_update(&ctx, static_cast<const unsigned char *>(data), len);
  mg_sha1_final(out, &ctx);
  return MGFFI_OK;
}

}  // extern "C"
