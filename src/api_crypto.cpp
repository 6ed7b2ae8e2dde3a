// The C ABI of the web helpers: Mongoose's HMAC-SHA256, base64 and
// mg_http_creds, as pure functions over caller-owned buffers.
#include <cstring>
#include <string>

#include "mongoose.h"
#include "mongoose_ffi.h"

namespace {

bool bad_buf(const void *p, size_t len) {
  return p == nullptr && len > 0;
}

// The standard alphabet with padding, for mg_base64_decode; false when s
// holds a byte of neither alphabet or cannot be base64 (length 1 mod 4).
bool normalize_base64(const char *s, size_t n, std::string &out) {
  out.clear();
  out.reserve(n + 3);
  size_t pad = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '-') ch = '+';
    if (ch == '_') ch = '/';
    const bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                       (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (ch == '=') {
      pad++;
    } else if (!alpha || pad > 0) {
      return false;  // a byte outside the alphabet, or data after padding
    }
    out.push_back(ch);
  }
  if (pad > 2 || out.size() % 4 == 1) return false;
  while (out.size() % 4 != 0) out.push_back('=');
  return true;
}

}  // namespace

extern "C" {

int mgffi_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                      uint8_t *out, size_t out_len) {
  if (bad_buf(key, key_len) || bad_buf(data, data_len) || out == nullptr) return MGFFI_ERR_ARG;
  if (out_len < 32) return MGFFI_ERR_SPACE;
  // Mongoose takes non-const pointers but only reads them.
  mg_hmac_sha256(out, static_cast<uint8_t *>(const_cast<void *>(key)), key_len,
                 static_cast<uint8_t *>(const_cast<void *>(data)), data_len);
  return MGFFI_OK;
}

int mgffi_base64_encode(const void *src, size_t src_len, int url, char *dst, size_t dst_len,
                        size_t *out_len) {
  if (bad_buf(src, src_len) || dst == nullptr || out_len == nullptr) return MGFFI_ERR_ARG;
  *out_len = 0;
  if (dst_len < (src_len + 2) / 3 * 4 + 1) return MGFFI_ERR_SPACE;
  if (src_len == 0) {
    dst[0] = '\0';
    return MGFFI_OK;
  }
  const auto *p = static_cast<const unsigned char *>(src);
  size_t n = url ? mg_base64url_encode(p, src_len, dst, dst_len)
                 : mg_base64_encode(p, src_len, dst, dst_len);
  if (url) {
    while (n > 0 && dst[n - 1] == '=') n--;  // no padding in the URL form
    dst[n] = '\0';
  }
  *out_len = n;
  return MGFFI_OK;
}

int mgffi_base64_decode(const char *src, size_t src_len, void *dst, size_t dst_len,
                        size_t *out_len) {
  if (bad_buf(src, src_len) || dst == nullptr || out_len == nullptr) return MGFFI_ERR_ARG;
  *out_len = 0;
  if (dst_len < (src_len + 3) / 4 * 3 + 1) return MGFFI_ERR_SPACE;
  if (src_len == 0) {
    static_cast<char *>(dst)[0] = '\0';
    return MGFFI_OK;
  }
  try {
    std::string norm;
    if (!normalize_base64(src, src_len, norm)) return MGFFI_ERR_ARG;
    const size_t n = mg_base64_decode(norm.data(), norm.size(), static_cast<char *>(dst), dst_len);
    if (n == 0) return MGFFI_ERR_ARG;  // Mongoose's answer for invalid input
    *out_len = n;
    return MGFFI_OK;
  } catch (...) {
    return MGFFI_ERR_NOMEM;
  }
}

int mgffi_http_creds(const char *authorization, size_t auth_len, char *user, size_t user_len,
                     char *pass, size_t pass_len) {
  if (bad_buf(authorization, auth_len) || user == nullptr || pass == nullptr || user_len == 0 ||
      pass_len == 0) {
    return MGFFI_ERR_ARG;
  }
  // A message with the one header mg_http_creds reads first.
  struct mg_http_message hm;
  std::memset(&hm, 0, sizeof(hm));
  hm.headers[0].name = mg_str_n("Authorization", 13);
  hm.headers[0].value = mg_str_n(authorization, auth_len);
  mg_http_creds(&hm, user, user_len, pass, pass_len);
  if (auth_len > 6 && std::memcmp(authorization, "Basic ", 6) == 0) return 1;
  if (auth_len > 7 && std::memcmp(authorization, "Bearer ", 7) == 0) return 2;
  return 0;
}

}  // extern "C"
