// libFuzzer target: arbitrary WebSocket frame sequences against the glue,
// both sides (C ABI only). Server side: a client upgrades /ws on a listener
// and then sends the input as raw bytes (frames, or anything). Client side:
// the glue's WebSocket client connects to a socket of the harness, which
// answers the handshake and then sends the input as the server's bytes.
// Events are drained the way the Lua layer drains them: every view read,
// messages echoed (or answered with pings, binary, a close), connections
// paused and resumed.
//
// Input layout: byte 0 picks the variant, the rest is what the peer sends.
//   bit 0: client side (else server side)
//   bit 1: send in two writes, split at (bits 5-7 + 1) ninths of the payload
//   bit 2: end with a reset (SO_LINGER 0) instead of a close
//   bit 3: the connection with small limits (max_message 1024, 20 control
//          frames a second) instead of the defaults
//   bit 4: answer messages by pausing reading for a poll and sending a ping
//   without bit 1, bit 5: permessage-deflate agreed (frames with RSV1 are
//          inflated); bit 6 too: the server keeps its context (client side:
//          the connection's own inflater instead of the manager's shared one)
//
// Built like fuzz_http_server.cpp (scripts/fuzz.sh; CMake replays the corpus
// in tests/fuzz/corpus_ws).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace {

// SHA-1 (FIPS 180-4) and base64, for the harness's own 101 answer.
void sha1(const std::string &in, unsigned char out[20]) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string msg = in;
  const std::uint64_t bits = static_cast<std::uint64_t>(in.size()) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; i--) msg.push_back(static_cast<char>(bits >> (i * 8)));
  auto rol = [](std::uint32_t v, int n) { return (v << n) | (v >> (32 - n)); };
  for (std::size_t off = 0; off < msg.size(); off += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; i++) {
      const auto *p = reinterpret_cast<const unsigned char *>(msg.data() + off + 4 * i);
      w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
             (std::uint32_t{p[2]} << 8) | p[3];
    }
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d), k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d, k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d, k = 0xCA62C1D6;
      }
      const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 4; j++) out[4 * i + j] = static_cast<unsigned char>(h[i] >> (24 - 8 * j));
  }
}

std::string base64(const unsigned char *p, std::size_t n) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
    if (i + 2 < n) v |= p[i + 2];
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < n ? kChars[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kChars[v & 63] : '=';
  }
  return out;
}

struct Harness {
  mgffi_manager *m = nullptr;
  std::uint64_t listeners[2] = {0, 0};
  std::uint16_t ports[2] = {0, 0};
  int peer_listener = -1;  // the harness's own server, for the client side
  std::uint16_t peer_port = 0;
};

void set_small_limits(mgffi_manager *m, std::uint64_t id) {
  mgffi_set_limit(m, id, MGFFI_LIMIT_WS_MAX_MESSAGE, 1024);
  mgffi_set_limit(m, id, MGFFI_LIMIT_WS_CONTROL_RATE, 10);
  mgffi_set_limit(m, id, MGFFI_LIMIT_WS_MESSAGE_TIMEOUT_MS, 50);
  mgffi_set_limit(m, id, MGFFI_LIMIT_MAX_SEND_QUEUE, 4096);
}

Harness &harness() {
  static Harness h;
  if (h.m != nullptr) return h;
  mgffi_log_set_level(0);
  h.m = mgffi_manager_new();
  if (h.m == nullptr) std::abort();
  for (std::uint64_t &id : h.listeners) {
    if (fuzz::listen_url(h.m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &id) != MGFFI_OK) {
      std::abort();
    }
    mgffi_set_event_mask(h.m, id, 0xffffffffu);
  }
  set_small_limits(h.m, h.listeners[1]);
  h.ports[0] = fuzz::port_of(h.m, h.listeners[0]);
  h.ports[1] = fuzz::port_of(h.m, h.listeners[1]);
  h.peer_listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (h.peer_listener < 0 || bind(h.peer_listener, reinterpret_cast<sockaddr *>(&sa), len) != 0 ||
      listen(h.peer_listener, 16) != 0 ||
      getsockname(h.peer_listener, reinterpret_cast<sockaddr *>(&sa), &len) != 0) {
    std::abort();
  }
  h.peer_port = ntohs(sa.sin_port);
  return h;
}

// Handles the last poll's events as the Lua layer would.
void drain_events(Harness &h, int n, unsigned variant, std::vector<std::uint64_t> *paused) {
  const mgffi_event *evs = mgffi_events(h.m);
  for (int i = 0; i < n; i++) {
    const mgffi_event &e = evs[i];
    fuzz::touch_event(e);
    switch (e.type) {
      case MGFFI_EV_HTTP_MSG:
        if (e.http != nullptr && e.http->status == 0) mgffi_ws_upgrade(h.m, e.conn_id, nullptr, 0);
        break;
      case MGFFI_EV_WS_MSG:
        if (variant & 16) {
          mgffi_pause_reading(h.m, e.conn_id, 1);
          paused->push_back(e.conn_id);
          mgffi_ws_send(h.m, e.conn_id, "p", 1, 9);
        }
        mgffi_ws_send(h.m, e.conn_id, e.data.ptr, e.data.len, (e.value & 15) == 2 ? 2 : 1);
        break;
      case MGFFI_EV_WS_CTL:
        if ((e.value & 15) == 8) mgffi_ws_send(h.m, e.conn_id, "\x03\xe8", 2, 8);
        break;
      default: break;
    }
  }
}

int poll_once(Harness &h, unsigned variant, std::vector<std::uint64_t> *paused, int timeout_ms) {
  std::vector<std::uint64_t> resume;
  resume.swap(*paused);
  const int n = mgffi_poll(h.m, timeout_ms);
  if (n < 0) std::abort();
  drain_events(h, n, variant, paused);
  for (std::uint64_t id : resume) mgffi_pause_reading(h.m, id, 0);
  return n;
}

// Reads from fd until the end of an HTTP head, polling meanwhile; returns
// the head ("" when the peer went away or took too long).
std::string read_head(Harness &h, int fd, unsigned variant, std::vector<std::uint64_t> *paused) {
  std::string got;
  for (int i = 0; i < 400 && got.find("\r\n\r\n") == std::string::npos; i++) {
    poll_once(h, variant, paused, 1);
    fuzz::drain_socket(fd, &got);
  }
  const std::size_t end = got.find("\r\n\r\n");
  return end == std::string::npos ? "" : got.substr(0, end + 4);
}

bool deflate_wanted(unsigned variant) {
  return (variant & 2) == 0 && (variant & 0x20) != 0;
}

// The server side: a client that upgrades, then sends the input.
int open_server_side(Harness &h, unsigned variant, std::vector<std::uint64_t> *paused) {
  const int which = (variant >> 3) & 1;
  int fd = fuzz::connect_client(h.ports[which], [&] { poll_once(h, variant, paused, 1); });
  // permessage-deflate offered (the listeners accept it): frames with RSV1
  // go through the shared inflater.
  std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (deflate_wanted(variant)) upgrade += "Sec-WebSocket-Extensions: permessage-deflate\r\n";
  upgrade += "\r\n";
  fuzz::send_all(fd, reinterpret_cast<const std::uint8_t *>(upgrade.data()), upgrade.size(),
                 [&] { poll_once(h, variant, paused, 0); });
  if (read_head(h, fd, variant, paused).compare(0, 12, "HTTP/1.1 101") != 0) {
    std::fprintf(stderr, "fuzz: the upgrade was not answered 101\n");
    std::abort();
  }
  return fd;
}

// The client side: the glue connects to the harness, which answers 101.
int open_client_side(Harness &h, unsigned variant, std::vector<std::uint64_t> *paused,
                     std::uint64_t *client) {
  const std::string url = "ws://127.0.0.1:" + std::to_string(h.peer_port) + "/ws";
  if (mgffi_ws_connect(h.m, url.data(), url.size(), nullptr, 0, client) != MGFFI_OK) std::abort();
  mgffi_set_event_mask(h.m, *client, 0xffffffffu);
  // The client offers permessage-deflate and the harness accepts it, with
  // server_no_context_takeover unless bit 6 is set.
  if (deflate_wanted(variant)) {
    const mgffi_ws_deflate on = {1, 1, 0, 15, 64};
    if (mgffi_ws_set_deflate(h.m, *client, &on) != MGFFI_OK) std::abort();
  }
  if (variant & 8) set_small_limits(h.m, *client);
  int fd = -1;
  for (int i = 0; i < 400 && fd < 0; i++) {
    poll_once(h, variant, paused, 1);
    fd = accept4(h.peer_listener, nullptr, nullptr, SOCK_NONBLOCK);
  }
  if (fd < 0) std::abort();
  const std::string head = read_head(h, fd, variant, paused);
  const std::size_t k = head.find("Sec-WebSocket-Key: ");
  if (k == std::string::npos) std::abort();
  const std::string key = head.substr(k + 19, head.find("\r\n", k) - (k + 19));
  unsigned char digest[20];
  sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", digest);
  const std::string reply =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      base64(digest, sizeof(digest)) + "\r\n" +
      (!deflate_wanted(variant) ? ""
       : (variant & 0x40) != 0  ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                  "client_no_context_takeover\r\n"
                                : "Sec-WebSocket-Extensions: permessage-deflate; "
                                  "server_no_context_takeover; client_no_context_takeover\r\n") +
      "\r\n";
  fuzz::send_all(fd, reinterpret_cast<const std::uint8_t *>(reply.data()), reply.size(),
                 [&] { poll_once(h, variant, paused, 0); });
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1) return 0;
  Harness &h = harness();
  const fuzz::Input in{data[0], data + 1, size - 1};
  std::vector<std::uint64_t> paused;
  const std::size_t before = mgffi_connection_count(h.m);
  std::uint64_t client = 0;
  const int fd = (in.variant & 1) ? open_client_side(h, in.variant, &paused, &client)
                                  : open_server_side(h, in.variant, &paused);
  // The glue must notice and drop the connection.
  fuzz::run_connection(
      h.m, fd, in, [&] { return poll_once(h, in.variant, &paused, 0); },
      [&] { poll_once(h, 0, &paused, 1); }, before, 300, "a connection outlived its peer");
  return 0;
}

#ifdef MGFFI_FUZZ_REPLAY
int main(int argc, char **argv) {
  return fuzz::replay_main(argc, argv);
}
#endif
