// permessage-deflate (RFC 7692): the negotiation of its parameters (pure,
// unit-tested) and zlib streams to compress and decompress messages.
//
// Memory: a zlib deflate stream costs about 256 KiB and an inflate stream
// about 40 KiB. Unless a listener asks for context takeover, the server
// answers every offer with server_no_context_takeover and
// client_no_context_takeover (RFC 7692 7.1.1.1 and 7.1.1.2 allow it), so no
// message depends on the one before and the manager's few shared streams
// (reset after each message) serve every connection: an idle WebSocket
// holds no zlib state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "byte_buffer.hpp"
#include "mongoose.h"
#include "noncopyable.hpp"

struct z_stream_s;

namespace mgffi {

// What a listener or client wants (from mgffi_ws_set_deflate).
struct DeflateConfig {
  bool enabled = false;
  int level = 1;                  // zlib level, 0-9
  bool context_takeover = false;  // keep the compression context between messages
  int max_window_bits = 15;       // our compressor's window, 9-15
  std::size_t min_size = 64;      // shorter messages go out uncompressed
};

// What was agreed for one connection.
struct DeflateParams {
  bool active = false;
  bool our_no_context = true;   // we reset our compressor after each message
  bool peer_no_context = true;  // the peer resets its own: we reset our decompressor
  int our_window_bits = 15;     // our compressor's window
};

// Server side: picks the first acceptable offer among the
// Sec-WebSocket-Extensions values of a request (all of them, joined with
// ", "). On success fills params and the response header's value.
bool negotiate_deflate(mg_str offers, const DeflateConfig &config, DeflateParams *params,
                       std::string *response);

// Client side: the offer to send (a Sec-WebSocket-Extensions value).
std::string deflate_offer(const DeflateConfig &config);

// Client side: checks the server's answer to our offer. Empty or absent:
// not negotiated (params->active false). False when the answer breaks the
// protocol (an extension we did not offer, a parameter we cannot honour).
bool accept_deflate_response(mg_str answer, const DeflateConfig &config, DeflateParams *params);

// A raw-deflate compressor: a message in, its compressed bytes out (the
// final 00 00 ff ff of Z_SYNC_FLUSH removed, RFC 7692 7.2.1).
class Deflater : NonCopyable {
 public:
  Deflater(int level, int window_bits);
  ~Deflater();
  bool ok() const { return ok_; }
  // Appends the compressed form of p[0..n) to out; reset_after: forget the
  // context. False on a zlib error or OOM (out is as it was, the stream
  // reset: a shared one then serves the next message).
  bool compress(const void *p, std::size_t n, ByteBuffer *out, bool reset_after);

 private:
  std::unique_ptr<z_stream_s> z_;
  bool ok_ = false;
};

// A raw-deflate decompressor for whole messages, with an output limit.
class Inflater : NonCopyable {
 public:
  Inflater();
  ~Inflater();
  bool ok() const { return ok_; }
  enum Status { kOk, kTooBig, kCorrupt, kNoMemory };
  // Appends the decompressed message to out (at most limit bytes; 0: no
  // limit); reset_after: forget the context. Any failure resets the
  // stream (a shared one then serves the next message).
  Status inflate(const void *p, std::size_t n, ByteBuffer *out, std::uint64_t limit,
                 bool reset_after);

 private:
  std::unique_ptr<z_stream_s> z_;
  bool ok_ = false;
};

}  // namespace mgffi
