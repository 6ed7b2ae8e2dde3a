#include "http_parse.hpp"

#include <strings.h>

#include <cstring>

namespace mgffi {

namespace {

// Bytes a head may hold (Mongoose's rule): CR, LF, TAB and everything from
// space up, UTF-8 included.
inline bool head_byte_ok(unsigned char ch) {
  return ch >= ' ' || ch == '\n' || ch == '\r' || ch == '\t';
}

// RFC 9110 5.6.2: tchar.
inline bool is_tchar(unsigned char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
  return ch != 0 && std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr;
}

inline int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

bool name_is(const mg_str &name, const char *expected) {
  return mg_strcasecmp(name, mg_str(expected)) == 0;
}

}  // namespace

long find_head_end(const unsigned char *buf, std::size_t len, std::size_t *scanned) {
  std::size_t i = *scanned;
  for (; i < len; i++) {
    const unsigned char ch = buf[i];
    if (!head_byte_ok(ch)) return -1;
    if (ch == '\n' && i > 0 &&
        (buf[i - 1] == '\n' || (i > 1 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))) {
      return static_cast<long>(i + 1);
    }
  }
  *scanned = len;
  return 0;
}

bool is_token(mg_str s) {
  if (s.len == 0) return false;
  for (std::size_t i = 0; i < s.len; i++) {
    if (!is_tchar(static_cast<unsigned char>(s.buf[i]))) return false;
  }
  return true;
}

HeadVerdict check_request_head(const mg_http_message &hm) {
  HeadVerdict v;
  if (!is_token(hm.method)) {
    v.status = 400;
    v.reason = "request method is not a token";
    return v;
  }
  // mg_http_parse has checked the form HTTP/d.d.
  const bool http10 = hm.proto.len == 8 && std::strncmp(hm.proto.buf, "HTTP/1.0", 8) == 0;
  const bool http11 = hm.proto.len == 8 && std::strncmp(hm.proto.buf, "HTTP/1.1", 8) == 0;
  if (!http10 && !http11) {
    v.status = 505;
    v.reason = "HTTP version not supported";
    return v;
  }
  std::size_t hosts = 0;
  bool te = false;
  for (const mg_http_header &h : hm.headers) {
    if (h.name.len == 0) break;
    if (name_is(h.name, "Host")) hosts++;
    if (name_is(h.name, "Transfer-Encoding")) te = true;
  }
  if (hosts > 1 || (http11 && hosts == 0)) {
    v.status = 400;
    v.reason = hosts > 1 ? "more than one Host header" : "HTTP/1.1 request without Host";
    return v;
  }
  if (http10 && te) {
    v.status = 400;
    v.reason = "Transfer-Encoding in an HTTP/1.0 request";
  }
  return v;
}

bool parse_content_length(mg_str value, std::uint64_t *out) {
  if (value.len == 0) return false;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < value.len; i++) {
    const char ch = value.buf[i];
    if (ch < '0' || ch > '9') return false;
    const unsigned d = static_cast<unsigned>(ch - '0');
    n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
  }
  *out = n;
  return true;
}

ChunkDecoder::Status ChunkDecoder::feed(const char *p, std::size_t len, Sink &sink,
                                        std::size_t *consumed) {
  std::size_t i = 0;
  *consumed = 0;
  Status status = kNeedMore;
  while (i < len && status == kNeedMore) {
    const char ch = p[i];
    switch (state_) {
      case kSize: {
        const int v = hex_value(ch);
        if (v >= 0) {
          if (++digits_ > kMaxSizeDigits) return fail("chunk size too long");
          remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
          if (remaining_ > kMaxChunkSize) return fail("chunk size too large");
          i++;
        } else if (digits_ == 0) {
          return fail("chunk size is not a hex number");
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
          state_ = kExtension;  // BWS ";" chunk-ext: skipped
          ext_len_ = 0;
          ext_semicolon_ = false;
        } else if (ch == '\r') {
          state_ = kSizeLf;
          i++;
        } else {
          return fail("invalid chunk size line");
        }
        break;
      }
      case kExtension:
        if (ch == '\r') {
          if (!ext_semicolon_) return fail("invalid chunk size line");
          state_ = kSizeLf;
        } else if (ch == ';') {
          ext_semicolon_ = true;
        } else if (!ext_semicolon_ && ch != ' ' && ch != '\t') {
          return fail("invalid chunk size line");
        } else if (ch == '\n' || (static_cast<unsigned char>(ch) < ' ' && ch != '\t')) {
          return fail("invalid chunk extension");
        }
        if (++ext_len_ > kMaxExtension) return fail("chunk extension too long");
        i++;
        break;
      case kSizeLf:
        if (ch != '\n') return fail("chunk size line not ended by CRLF");
        i++;
        digits_ = 0;
        state_ = remaining_ == 0 ? kTrailerLine : kData;
        break;
      case kData: {
        std::size_t n = len - i;
        if (n > remaining_) n = static_cast<std::size_t>(remaining_);
        if (!sink.data(p + i, n)) return fail("limit");
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = kDataCr;
        break;
      }
      case kDataCr:
        if (ch != '\r') return fail("chunk data not followed by CRLF");
        state_ = kDataLf;
        i++;
        break;
      case kDataLf:
        if (ch != '\n') return fail("chunk data not followed by CRLF");
        state_ = kSize;
        i++;
        break;
      case kTrailerLine:
        if (ch == '\r') {
          state_ = kFinalLf;
          i++;
          break;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n') return fail("invalid trailer field");
        state_ = kTrailer;
        break;
      case kTrailer: {
        // Up to the CR of this line, handed on as is.
        const char *cr = static_cast<const char *>(std::memchr(p + i, '\r', len - i));
        const std::size_t n = cr != nullptr ? static_cast<std::size_t>(cr - (p + i)) : len - i;
        for (std::size_t k = 0; k < n; k++) {
          const unsigned char b = static_cast<unsigned char>(p[i + k]);
          if (b < ' ' && b != '\t') return fail("invalid byte in a trailer field");
        }
        if (n > 0 && !sink.trailer(p + i, n)) return fail("limit");
        i += n;
        if (cr != nullptr) {
          state_ = kTrailerLf;
          i++;
        }
        break;
      }
      case kTrailerLf:
        if (ch != '\n') return fail("trailer field not ended by CRLF");
        if (!sink.trailer("\r\n", 2)) return fail("limit");
        state_ = kTrailerLine;
        i++;
        break;
      case kFinalLf:
        if (ch != '\n') return fail("chunked body not ended by CRLF");
        state_ = kEnd;
        i++;
        status = kDone;
        break;
      case kEnd: status = kDone; break;
      case kFailed: return kError;
    }
  }
  *consumed = i;
  if (state_ == kEnd) status = kDone;
  return status;
}

ConnectionHeader find_connection_header(const char *headers, std::size_t len) {
  ConnectionHeader found;
  static const char kName[] = "connection:";
  const std::size_t name_len = sizeof(kName) - 1;
  std::size_t i = 0;
  while (i < len) {
    std::size_t end = i;
    while (end < len && headers[end] != '\n') end++;
    if (end - i > name_len && strncasecmp(headers + i, kName, name_len) == 0) {
      mg_str value = mg_str_n(headers + i + name_len, end - i - name_len);
      while (value.len > 0 && (value.buf[0] == ' ' || value.buf[0] == '\t')) {
        value.buf++;
        value.len--;
      }
      while (value.len > 0 && std::strchr(" \t\r", value.buf[value.len - 1]) != nullptr) {
        value.len--;
      }
      found.present = true;
      found.close = found.close || mg_strcasecmp(value, mg_str("close")) == 0;
    }
    i = end + 1;
  }
  return found;
}

}  // namespace mgffi
