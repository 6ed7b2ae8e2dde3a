// Pure WebSocket (RFC 6455) pieces, free of connections and I/O, unit-tested
// and fuzzed on their own: the frame header writer, a streaming UTF-8
// validator, the close-code rule, and WsReceiver, which turns received
// bytes into whole messages and control frames, failing the connection
// (with the close code to send) at the first byte that breaks a rule.
#pragma once

#include <cstddef>
#include <cstdint>

#include "byte_buffer.hpp"

namespace mgffi {

enum WsOpcode : std::uint8_t {
  kWsContinuation = 0,
  kWsText = 1,
  kWsBinary = 2,
  kWsClose = 8,
  kWsPing = 9,
  kWsPong = 10
};

// Writes a frame header for a payload of len bytes into out (room for 14
// bytes) and returns its length. mask: 4 bytes for a client's frame, or
// nullptr. rsv1: the permessage-deflate bit.
std::size_t ws_write_header(unsigned char *out, std::uint64_t len, int op, bool fin, bool rsv1,
                            const unsigned char *mask);

// XORs p[0..n) with the 4-byte mask, starting at mask offset phase (0-3).
void ws_unmask(unsigned char *p, std::size_t n, const unsigned char mask[4], std::size_t phase);

// A close code a peer may send (RFC 6455 7.4 and IANA's registry: 1004-1006,
// 1015-2999 and codes below 1000 or above 4999 are not).
bool ws_close_code_valid(unsigned code);

// Validates UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF) as it arrives in pieces.
class Utf8Validator {
 public:
  // False at the first invalid byte (the validator then stays failed).
  bool feed(const unsigned char *p, std::size_t n);
  // True when no sequence is left unfinished.
  bool complete() const { return need_ == 0 && !failed_; }
  void reset() { *this = Utf8Validator(); }

 private:
  std::uint8_t need_ = 0;                // continuation bytes still expected
  unsigned char lo_ = 0x80, hi_ = 0xBF;  // range of the next continuation byte
  bool failed_ = false;
};

// Parses frames from a connection's received bytes (unmasking them in
// place) and reassembles fragmented messages. A frame header, and a whole
// control frame, are consumed only once complete (they are small); data
// payloads are consumed as they arrive, so the receive buffer stays small.
class WsReceiver {
 public:
  struct Config {
    bool expect_masked = true;      // server: client frames are masked
    bool allow_rsv1 = false;        // permessage-deflate was negotiated
    std::uint64_t max_message = 0;  // 0: no limit
  };

  struct Sink {
    virtual ~Sink() = default;
    // A whole message. first: the first frame's byte 0 (FIN, RSV1, opcode).
    // The bytes are valid during the call only.
    virtual void message(unsigned char first, const unsigned char *p, std::size_t n) = 0;
    // A control frame (ping, pong or a valid close).
    virtual void control(unsigned char first, const unsigned char *p, std::size_t n) = 0;
  };

  enum Status { kOk, kFailed, kClosed };

  void configure(const Config &config) { config_ = config; }

  // Consumes what it can of buf[0..len); returns how many bytes it used.
  // status() tells whether the connection must now be failed (code(),
  // reason()) or a close frame ended it (later bytes are ignored).
  std::size_t feed(unsigned char *buf, std::size_t len, Sink &sink);

  Status status() const { return status_; }
  unsigned code() const { return code_; }
  const char *reason() const { return reason_; }
  // A fragmented message is in progress.
  bool in_message() const { return message_op_ != 0; }
  // Bytes of the message in progress (fragments received so far).
  std::size_t assembled() const { return message_.size(); }
  // Gives back a large reassembly buffer once idle.
  void trim(std::size_t keep);
  void reset() {
    ByteBuffer keep = static_cast<ByteBuffer &&>(message_);
    keep.clear();
    *this = WsReceiver();
    message_ = static_cast<ByteBuffer &&>(keep);
  }

 private:
  std::size_t fail(unsigned code, const char *reason, std::size_t used) {
    status_ = kFailed;
    code_ = code;
    reason_ = reason;
    return used;
  }
  std::size_t start_frame(unsigned char *buf, std::size_t len, Sink &sink);
  bool check_close(const unsigned char *p, std::size_t n);

  Config config_;
  Status status_ = kOk;
  unsigned code_ = 0;
  const char *reason_ = "";
  // The frame being received (payload not yet complete).
  bool in_frame_ = false;
  unsigned char frame_first_ = 0;
  unsigned char mask_[4] = {};
  bool masked_ = false;
  std::uint64_t frame_left_ = 0;
  std::size_t mask_phase_ = 0;
  // The message being reassembled: its opcode (0: none) and first byte.
  std::uint8_t message_op_ = 0;
  unsigned char message_first_ = 0;
  bool message_fin_ = false;  // the frame being received ends the message
  bool validate_ = false;     // text, not compressed: validate as it arrives
  Utf8Validator utf8_;
  ByteBuffer message_;
};

}  // namespace mgffi
