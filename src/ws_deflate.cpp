#include "ws_deflate.hpp"

#include <zlib.h>

#include <cstring>
#include <new>

namespace mgffi {

namespace {

mg_str trim(mg_str s) {
  while (s.len > 0 && (s.buf[0] == ' ' || s.buf[0] == '\t')) s.buf++, s.len--;
  while (s.len > 0 && (s.buf[s.len - 1] == ' ' || s.buf[s.len - 1] == '\t')) s.len--;
  return s;
}

bool equals(mg_str s, const char *word) {
  return mg_strcasecmp(s, mg_str(word)) == 0;
}

// A window-bits value: 8-15, possibly quoted. -1 when invalid.
int window_bits(mg_str v) {
  v = trim(v);
  if (v.len >= 2 && v.buf[0] == '"' && v.buf[v.len - 1] == '"') v.buf++, v.len -= 2;
  if (v.len == 1 && v.buf[0] == '8') return 8;
  if (v.len == 1 && v.buf[0] == '9') return 9;
  if (v.len == 2 && v.buf[0] == '1' && v.buf[1] >= '0' && v.buf[1] <= '5')
    return 10 + (v.buf[1] - '0');
  return -1;
}

// The parameters of one permessage-deflate extension: false when one is
// unknown, repeated or has a bad value.
struct Offer {
  bool server_no_context = false, client_no_context = false;
  int server_bits = 0;  // 0: absent
  int client_bits = 0;  // 0: absent, -1: present without a value
};

bool parse_params(mg_str params, Offer *o) {
  mg_str item;
  bool seen[4] = {};
  while (mg_span(params, &item, &params, ';')) {
    mg_str key, value;
    // mg_span gives the whole item as key when there is no '='.
    const bool has_value = std::memchr(item.buf, '=', item.len) != nullptr;
    mg_span(item, &key, &value, '=');
    key = trim(key);
    if (key.len == 0) continue;
    int which = equals(key, "server_no_context_takeover")   ? 0
                : equals(key, "client_no_context_takeover") ? 1
                : equals(key, "server_max_window_bits")     ? 2
                : equals(key, "client_max_window_bits")     ? 3
                                                            : -1;
    if (which < 0 || seen[which]) return false;
    seen[which] = true;
    if (which < 2) {
      if (has_value) return false;
      (which == 0 ? o->server_no_context : o->client_no_context) = true;
    } else if (which == 2) {
      if (!has_value || (o->server_bits = window_bits(value)) < 0) return false;
    } else {
      o->client_bits = has_value ? window_bits(value) : -1;
      if (has_value && o->client_bits < 0) return false;
    }
  }
  return true;
}

// Splits "name; params" and tells whether name is permessage-deflate.
bool is_deflate(mg_str extension, mg_str *params) {
  mg_str name;
  mg_span(extension, &name, params, ';');
  return equals(trim(name), "permessage-deflate");
}

}  // namespace

bool negotiate_deflate(mg_str offers, const DeflateConfig &config, DeflateParams *params,
                       std::string *response) {
  if (!config.enabled) return false;
  mg_str extension;
  while (mg_span(offers, &extension, &offers, ',')) {
    mg_str rest;
    Offer o;
    if (!is_deflate(extension, &rest) || !parse_params(rest, &o)) continue;
    int bits = config.max_window_bits;
    if (o.server_bits > 0 && o.server_bits < bits) bits = o.server_bits;
    if (bits < 9) continue;  // zlib's raw deflate has no 8-bit window: declined
    params->active = true;
    params->our_window_bits = bits;
    params->our_no_context = o.server_no_context || !config.context_takeover;
    params->peer_no_context = o.client_no_context || !config.context_takeover;
    *response = "permessage-deflate";
    if (params->our_no_context) *response += "; server_no_context_takeover";
    if (params->peer_no_context) *response += "; client_no_context_takeover";
    if (o.server_bits > 0) *response += "; server_max_window_bits=" + std::to_string(bits);
    return true;
  }
  return false;
}

std::string deflate_offer(const DeflateConfig &config) {
  std::string offer = "permessage-deflate; client_max_window_bits";
  if (!config.context_takeover) offer += "; server_no_context_takeover; client_no_context_takeover";
  return offer;
}

bool accept_deflate_response(mg_str answer, const DeflateConfig &config, DeflateParams *params) {
  params->active = false;
  answer = trim(answer);
  if (answer.len == 0) return true;
  mg_str rest, extra;
  mg_str first = answer;
  if (mg_span(answer, &first, &extra, ',') && trim(extra).len > 0) return false;  // one only
  Offer o;
  if (!config.enabled || !is_deflate(first, &rest) || !parse_params(rest, &o)) return false;
  int bits = config.max_window_bits;
  if (o.client_bits > 0 && o.client_bits < bits) bits = o.client_bits;
  if (bits < 9) return false;  // told to use a window zlib cannot make
  params->active = true;
  params->our_window_bits = bits;
  params->our_no_context = o.client_no_context || !config.context_takeover;
  params->peer_no_context = o.server_no_context;
  return true;
}

Deflater::Deflater(int level, int window_bits) : z_(new (std::nothrow) z_stream_s()) {
  if (!z_) return;
  std::memset(z_.get(), 0, sizeof(z_stream_s));
  ok_ = deflateInit2(z_.get(), level, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
}

Deflater::~Deflater() {
  if (ok_) deflateEnd(z_.get());
}

namespace {

// One deflate call into the room reserved at the end of out; false on a
// zlib error.
bool deflate_step(z_stream_s *z, std::size_t room, ByteBuffer *out) {
  const int rc = ::deflate(z, Z_SYNC_FLUSH);
  if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
  out->set_size(out->size() + (room - z->avail_out));
  return true;
}

}  // namespace

bool Deflater::compress(const void *p, std::size_t n, ByteBuffer *out, bool reset_after) {
  if (!ok_) return false;
  z_stream_s &z = *z_;
  z.next_in = static_cast<Bytef *>(const_cast<void *>(p));
  z.avail_in = static_cast<uInt>(n);
  const std::size_t start = out->size();
  do {
    const std::size_t room = 16384 + n / 4;
    const int rc = out->reserve(out->size() + room) ? Z_OK : Z_MEM_ERROR;
    if (rc == Z_OK) {
      z.next_out = reinterpret_cast<Bytef *>(out->data() + out->size());
      z.avail_out = static_cast<uInt>(room);
    }
    if (rc != Z_OK || !deflate_step(&z, room, out)) {
      // A stream left mid-message would leak this message's bytes into
      // the next one (a shared stream serves other connections); a reset
      // one is valid for any peer, whatever context it keeps.
      deflateReset(&z);
      out->set_size(start);
      return false;
    }
  } while (z.avail_out == 0);
  // Z_SYNC_FLUSH ends with an empty stored block: 00 00 ff ff, left out.
  const char *end = out->data() + out->size();
  if (out->size() - start >= 4 && std::memcmp(end - 4, "\x00\x00\xff\xff", 4) == 0) {
    out->set_size(out->size() - 4);
  }
  if (reset_after) deflateReset(&z);
  return true;
}

Inflater::Inflater() : z_(new (std::nothrow) z_stream_s()) {
  if (!z_) return;
  std::memset(z_.get(), 0, sizeof(z_stream_s));
  ok_ = inflateInit2(z_.get(), -15) == Z_OK;
}

Inflater::~Inflater() {
  if (ok_) inflateEnd(z_.get());
}

Inflater::Status Inflater::inflate(const void *p, std::size_t n, ByteBuffer *out,
                                   std::uint64_t limit, bool reset_after) {
  if (!ok_) return kNoMemory;
  z_stream_s &z = *z_;
  static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
  const std::size_t start = out->size();
  Status status = kOk;
  bool ended = false;  // the sender ended the deflate stream (BFINAL)
  // The message, then the tail its sender left out.
  for (int part = 0; part < 2 && status == kOk && !ended; part++) {
    z.next_in =
        part == 0 ? static_cast<Bytef *>(const_cast<void *>(p)) : const_cast<Bytef *>(kTail);
    z.avail_in = static_cast<uInt>(part == 0 ? n : sizeof(kTail));
    for (;;) {
      const std::size_t room = 16384;
      if (!out->reserve(out->size() + room)) {
        status = kNoMemory;
        break;
      }
      z.next_out = reinterpret_cast<Bytef *>(out->data() + out->size());
      z.avail_out = static_cast<uInt>(room);
      const int rc = ::inflate(&z, Z_SYNC_FLUSH);
      out->set_size(out->size() + (room - z.avail_out));
      if (limit != 0 && out->size() - start > limit) {
        status = kTooBig;
        break;
      }
      if (rc == Z_STREAM_END) {
        ended = true;
        break;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        status = kCorrupt;
        break;
      }
      if (z.avail_out != 0) break;  // all input used, output not full
    }
  }
  if (reset_after || ended || status != kOk) inflateReset(&z);
  return status;
}

}  // namespace mgffi
