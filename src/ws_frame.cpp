#include "ws_frame.hpp"

#include <cstring>

namespace mgffi {

std::size_t ws_write_header(unsigned char *out, std::uint64_t len, int op, bool fin, bool rsv1,
                            const unsigned char *mask) {
  std::size_t n = 2;
  out[0] = static_cast<unsigned char>((op & 15) | (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0));
  if (len < 126) {
    out[1] = static_cast<unsigned char>(len);
  } else if (len < 65536) {
    out[1] = 126;
    out[2] = static_cast<unsigned char>(len >> 8);
    out[3] = static_cast<unsigned char>(len);
    n = 4;
  } else {
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = static_cast<unsigned char>(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask != nullptr) {
    out[1] |= 0x80;
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

void ws_unmask(unsigned char *p, std::size_t n, const unsigned char mask[4], std::size_t phase) {
  unsigned char m[8];
  for (int i = 0; i < 8; i++) m[i] = mask[(phase + i) & 3];
  std::uint64_t word;
  std::memcpy(&word, m, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= word;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; i++) p[i] ^= m[i & 7];
}

// The codes a close frame may carry: RFC 6455 7.4.1's, the ones IANA's
// registry added since (1012 service restart, 1013 try again later, 1014
// bad gateway), and the ranges for libraries and applications. 1004-1006
// and 1015 are never sent.
bool ws_close_code_valid(unsigned code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

bool Utf8Validator::feed(const unsigned char *p, std::size_t n) {
  if (failed_) return false;
  std::size_t i = 0;
  while (i < n) {
    if (need_ == 0) {
      // ASCII runs, eight bytes at a time.
      while (i + 8 <= n) {
        std::uint64_t v;
        std::memcpy(&v, p + i, 8);
        if ((v & 0x8080808080808080ull) != 0) break;
        i += 8;
      }
      if (i == n) break;
      const unsigned char b = p[i++];
      if (b < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        need_ = 2;
        if (b == 0xE0) lo_ = 0xA0;  // no overlong forms
        if (b == 0xED) hi_ = 0x9F;  // no surrogates
      } else if (b >= 0xF0 && b <= 0xF4) {
        need_ = 3;
        if (b == 0xF0) lo_ = 0x90;  // no overlong forms
        if (b == 0xF4) hi_ = 0x8F;  // nothing above U+10FFFF
      } else {
        failed_ = true;
        return false;
      }
    } else {
      const unsigned char b = p[i++];
      if (b < lo_ || b > hi_) {
        failed_ = true;
        return false;
      }
      lo_ = 0x80;
      hi_ = 0xBF;
      need_--;
    }
  }
  return true;
}

void WsReceiver::trim(std::size_t keep) {
  if (message_op_ == 0 && message_.capacity() > keep) message_.release();
}

bool WsReceiver::check_close(const unsigned char *p, std::size_t n) {
  if (n == 1) {
    fail(1002, "close frame with a 1-byte payload", 0);
    return false;
  }
  if (n >= 2) {
    const unsigned code = (static_cast<unsigned>(p[0]) << 8) | p[1];
    if (!ws_close_code_valid(code)) {
      fail(1002, "invalid close code", 0);
      return false;
    }
    Utf8Validator reason;
    if (!reason.feed(p + 2, n - 2) || !reason.complete()) {
      fail(1007, "close reason is not valid UTF-8", 0);
      return false;
    }
  }
  return true;
}

// Parses the header at buf (and, for a control frame or a frame whose
// payload is all there, the payload too). Returns the bytes consumed: 0 when
// the header (or the control frame) is not complete yet.
std::size_t WsReceiver::start_frame(unsigned char *buf, std::size_t len, Sink &sink) {
  if (len < 2) return 0;
  const unsigned char b0 = buf[0], b1 = buf[1];
  const std::uint8_t op = b0 & 15;
  const bool fin = (b0 & 0x80) != 0;
  const bool masked = (b1 & 0x80) != 0;
  std::size_t hlen = 2 + (masked ? 4 : 0);
  std::uint64_t plen = b1 & 0x7f;
  if (plen == 126) hlen += 2;
  if (plen == 127) hlen += 8;
  // Rules that the first two bytes decide: checked before waiting for more.
  const bool control = (op & 8) != 0;
  if (op != kWsContinuation && op != kWsText && op != kWsBinary && op != kWsClose &&
      op != kWsPing && op != kWsPong) {
    return fail(1002, "reserved opcode", 0);
  }
  if ((b0 & 0x30) != 0) return fail(1002, "RSV2 or RSV3 set", 0);
  if ((b0 & 0x40) != 0 && (!config_.allow_rsv1 || control || op == kWsContinuation)) {
    return fail(1002, "RSV1 set without a negotiated extension", 0);
  }
  if (masked != config_.expect_masked) {
    return fail(
        1002, config_.expect_masked ? "unmasked frame from a client" : "masked frame from a server",
        0);
  }
  if (control && (!fin || plen > 125)) {
    return fail(1002, fin ? "control frame over 125 bytes" : "fragmented control frame", 0);
  }
  if (op == kWsContinuation && message_op_ == 0) {
    return fail(1002, "continuation frame without a message to continue", 0);
  }
  if ((op == kWsText || op == kWsBinary) && message_op_ != 0) {
    return fail(1002, "new message inside a fragmented message", 0);
  }
  // The length is known before the mask: a message over the limit is
  // refused as soon as it is announced.
  const std::size_t len_bytes = plen == 126 ? 2 : plen == 127 ? 8 : 0;
  if (len < 2 + len_bytes) return 0;
  if (plen == 126) {
    plen = (static_cast<std::uint64_t>(buf[2]) << 8) | buf[3];
  } else if (plen == 127) {
    plen = 0;
    for (int i = 0; i < 8; i++) plen = (plen << 8) | buf[2 + i];
  }
  const std::uint64_t so_far = op == kWsContinuation ? message_.size() : 0;
  if (!control && config_.max_message != 0 &&
      (plen > config_.max_message || so_far > config_.max_message - plen)) {
    return fail(1009, "message too big", 0);
  }
  if (plen >> 63) return fail(1002, "frame length with its top bit set", 0);
  if (len < hlen) return 0;
  if (masked) std::memcpy(mask_, buf + hlen - 4, 4);
  masked_ = masked;

  if (control) {
    if (len - hlen < plen) return 0;  // wait for the whole control frame
    unsigned char *p = buf + hlen;
    const std::size_t n = static_cast<std::size_t>(plen);
    if (masked) ws_unmask(p, n, mask_, 0);
    if (op == kWsClose) {
      if (!check_close(p, n)) return hlen + n;
      sink.control(b0, p, n);
      status_ = kClosed;
      return hlen + n;
    }
    sink.control(b0, p, n);
    return hlen + n;
  }

  // A data frame: text, binary or continuation.
  if (op != kWsContinuation) {
    message_first_ = b0;
    validate_ = op == kWsText && (b0 & 0x40) == 0;
    utf8_.reset();
  }
  message_fin_ = fin;
  const std::size_t avail = len - hlen;
  // Fast path: a whole unfragmented message in the buffer is delivered in
  // place, without a copy.
  if (op != kWsContinuation && fin && avail >= plen) {
    unsigned char *p = buf + hlen;
    const std::size_t n = static_cast<std::size_t>(plen);
    if (masked) ws_unmask(p, n, mask_, 0);
    if (validate_ && (!utf8_.feed(p, n) || !utf8_.complete())) {
      return fail(1007, "text message is not valid UTF-8", hlen + n);
    }
    sink.message(b0, p, n);
    return hlen + n;
  }
  if (op != kWsContinuation) {
    message_op_ = op;
    message_.clear();
  }
  // Room for this frame at once (within the limit checked above).
  if (!message_.reserve(message_.size() + static_cast<std::size_t>(plen))) {
    return fail(1009, "out of memory for the message", 0);
  }
  in_frame_ = true;
  frame_first_ = b0;
  frame_left_ = plen;
  mask_phase_ = 0;
  return hlen;
}

std::size_t WsReceiver::feed(unsigned char *buf, std::size_t len, Sink &sink) {
  std::size_t used = 0;
  while (status_ == kOk && used < len) {
    if (!in_frame_) {
      const std::size_t n = start_frame(buf + used, len - used, sink);
      if (status_ == kFailed) return used + n;
      if (n == 0) break;
      used += n;
      if (!in_frame_ || frame_left_ > 0) continue;
    }
    // Payload of the current data frame, as much as has arrived.
    std::size_t n = len - used;
    if (n > frame_left_) n = static_cast<std::size_t>(frame_left_);
    unsigned char *p = buf + used;
    if (masked_) ws_unmask(p, n, mask_, mask_phase_);
    mask_phase_ = (mask_phase_ + n) & 3;
    if (validate_ && !utf8_.feed(p, n)) return fail(1007, "text message is not valid UTF-8", used);
    message_.append(p, n);
    used += n;
    frame_left_ -= n;
    if (frame_left_ > 0) break;
    in_frame_ = false;
    if (message_fin_) {
      if (validate_ && !utf8_.complete()) {
        return fail(1007, "text message is not valid UTF-8", used);
      }
      message_op_ = 0;
      sink.message(message_first_, reinterpret_cast<const unsigned char *>(message_.data()),
                   message_.size());
    }
  }
  return used;
}

}  // namespace mgffi
