// Pure HTTP/1.1 parsing pieces (RFC 9112), free of connections and I/O, so
// that each is unit-tested on its own (tests/cpp/http_parse_test.cpp):
// the end-of-head scanner, the request checks Mongoose's mg_http_parse
// leaves out, the incremental chunked-body decoder, and the Connection
// header finder of replies.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mongoose.h"

namespace mgffi {

// Finds the end of a message head (the blank line) in buf[0..len), resuming
// at *scanned (bytes already scanned by an earlier call) so that a head
// trickling in is scanned once, not once per read. Lines end in CRLF or LF,
// like Mongoose's mg_http_get_request_len. Returns the head's length, 0 when
// incomplete (*scanned updated), or -1 for a byte no head may hold.
long find_head_end(const unsigned char *buf, std::size_t len, std::size_t *scanned);

// What a request head parsed by mg_http_parse fails of RFC 9112, beyond
// Mongoose's own checks. status 0 means acceptable.
struct HeadVerdict {
  int status = 0;
  const char *reason = "";
};

// A request method must be a token (RFC 9110 9.1), the version HTTP/1.0 or
// HTTP/1.1 (505 for any other HTTP/d.d), HTTP/1.1 needs exactly one Host
// (RFC 9112 3.2), and an HTTP/1.0 request must not use Transfer-Encoding
// (RFC 9112 6.1).
HeadVerdict check_request_head(const mg_http_message &hm);

bool is_token(mg_str s);

// A Content-Length value: 1*DIGIT, saturating at UINT64_MAX. false when it
// is not a number.
bool parse_content_length(mg_str value, std::uint64_t *out);

// Decodes a chunked body (RFC 9112 7.1) as it arrives, in any pieces: chunk
// extensions are skipped, data is handed on, trailer fields are kept raw
// (name: value CRLF lines) for the caller to parse. Framing is strict: CRLF
// line ends, at most 16 hex digits (leading zeros included), a size below
// 2^31 per chunk (as Mongoose's own parser).
class ChunkDecoder {
 public:
  enum Status { kNeedMore, kDone, kError };

  // Receives decoded data and trailer bytes; return false to stop (e.g. a
  // limit was passed), which makes feed() return kError with stop's reason.
  struct Sink {
    virtual ~Sink() = default;
    virtual bool data(const char *p, std::size_t n) = 0;
    virtual bool trailer(const char *p, std::size_t n) = 0;
  };

  // Feeds len bytes; *consumed gets how many were used (all of them unless
  // the body ended or failed inside this piece).
  Status feed(const char *p, std::size_t len, Sink &sink, std::size_t *consumed);
  const char *error() const { return error_; }
  bool done() const { return state_ == kEnd; }
  void reset() { *this = ChunkDecoder(); }

  static constexpr std::size_t kMaxExtension = 4096;  // bytes of chunk-ext per chunk
  static constexpr std::size_t kMaxSizeDigits = 16;
  static constexpr std::uint64_t kMaxChunkSize = 0x7fffffff;

 private:
  enum State : std::uint8_t {
    kSize,         // hex digits of the chunk size
    kExtension,    // after the size: ";ext..." up to CR
    kSizeLf,       // CR of the size line seen
    kData,         // remaining_ bytes of chunk data
    kDataCr,       // the CR after the data
    kDataLf,       // the LF after the data
    kTrailerLine,  // the start of a trailer line (or the final CRLF)
    kTrailer,      // inside a trailer line
    kTrailerLf,    // CR of a trailer line seen
    kFinalLf,      // CR of the final empty line seen
    kEnd,
    kFailed
  };
  Status fail(const char *why) {
    state_ = kFailed;
    error_ = why;
    return kError;
  }

  State state_ = kSize;
  std::uint8_t digits_ = 0;
  std::uint64_t remaining_ = 0;
  bool ext_semicolon_ = false;
  std::size_t ext_len_ = 0;
  const char *error_ = "";
};

// The Connection header among a reply's "Name: value\r\n" lines.
struct ConnectionHeader {
  bool present = false;
  bool close = false;  // one of its values is "close"
};
ConnectionHeader find_connection_header(const char *headers, std::size_t len);

}  // namespace mgffi
