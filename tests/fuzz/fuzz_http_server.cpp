// libFuzzer target: arbitrary bytes from a client to an HTTP server built on
// the glue (C ABI only), with the event queue drained the way the Lua
// layer drains it: every view field of every event is read, every request
// is answered (plain, chunked, WebSocket upgrade), WebSocket messages are
// echoed, streamed bodies are consumed.
//
// Input layout: byte 0 picks the variant, the rest is what the client sends.
//   bit 0: the listener with small limits and body streaming (else defaults)
//   bit 1: send in two writes, split at (bits 5-7 + 1) ninths of the payload
//   bit 2: end with a reset (SO_LINGER 0) instead of a close
//   bits 3-4: how requests are answered (plain, chunked, upgrade, deferred)
//
// Built two ways: by scripts/fuzz.sh with clang -fsanitize=fuzzer,address
// (libFuzzer provides main), and by CMake with MGFFI_FUZZ_REPLAY defined,
// where main() below replays files or directories (the corpus) once each.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace {

struct Server {
  mgffi_manager *m = nullptr;
  std::uint64_t listeners[2] = {0, 0};
  std::uint16_t ports[2] = {0, 0};
};

Server &server() {
  static Server s;
  if (s.m != nullptr) return s;
  mgffi_log_set_level(0);
  s.m = mgffi_manager_new();
  if (s.m == nullptr) std::abort();
  if (fuzz::listen_url(s.m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &s.listeners[0]) != MGFFI_OK ||
      fuzz::listen_url(s.m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &s.listeners[1]) != MGFFI_OK) {
    std::abort();
  }
  // Listener 1: small limits, streamed bodies, small WebSocket messages.
  const std::pair<int, uint64_t> limits[] = {
      {MGFFI_LIMIT_MAX_BODY, 4096},        {MGFFI_LIMIT_STREAM_THRESHOLD, 1024},
      {MGFFI_LIMIT_MAX_CONNECTIONS, 64},   {MGFFI_LIMIT_REQUEST_TIMEOUT_MS, 2000},
      {MGFFI_LIMIT_MAX_HEADER_SIZE, 2048}, {MGFFI_LIMIT_MAX_HEADERS, 16},
      {MGFFI_LIMIT_WS_MAX_MESSAGE, 1024}};
  for (const auto &l : limits) mgffi_set_limit(s.m, s.listeners[1], l.first, l.second);
  for (std::uint64_t id : s.listeners) {
    mgffi_set_event_mask(s.m, id, 0xffffffffu);
  }
  s.ports[0] = fuzz::port_of(s.m, s.listeners[0]);
  s.ports[1] = fuzz::port_of(s.m, s.listeners[1]);
  return s;
}

// Answers, echoes and reads everything in the last poll's events.
void drain_events(mgffi_manager *m, int n, unsigned mode, std::vector<std::uint64_t> *deferred) {
  const mgffi_event *evs = mgffi_events(m);
  static const char kHeaders[] = "Content-Type: text/plain\r\n";
  for (int i = 0; i < n; i++) {
    const mgffi_event &e = evs[i];
    fuzz::touch_event(e);
    switch (e.type) {
      case MGFFI_EV_HTTP_MSG:
      case MGFFI_EV_HTTP_HDRS: {
        bool upgrade = e.http != nullptr && e.http->uri.len >= 3 &&
                       std::memcmp(e.http->uri.ptr, "/ws", 3) == 0;
        if (upgrade && (mode == 2 || mode == 0) && e.type == MGFFI_EV_HTTP_MSG) {
          mgffi_ws_upgrade(m, e.conn_id, nullptr, 0);
        } else if (mode == 1) {
          mgffi_http_begin_chunked(m, e.conn_id, 200, kHeaders, sizeof(kHeaders) - 1);
          mgffi_http_write_chunk(m, e.conn_id, "chunk", 5);
          mgffi_http_end_chunked(m, e.conn_id);
        } else if (mode == 3) {
          deferred->push_back(e.conn_id);  // answered after the next poll
        } else {
          mgffi_http_reply(m, e.conn_id, 200, kHeaders, sizeof(kHeaders) - 1, "ok\n", 3);
        }
        break;
      }
      case MGFFI_EV_WS_MSG:
        mgffi_ws_send(m, e.conn_id, e.data.ptr, e.data.len, (e.value & 15) == 2 ? 2 : 1);
        break;
      default: break;
    }
  }
}

// One poll plus the Lua-like handling of its events.
int poll_once(Server &s, unsigned mode, std::vector<std::uint64_t> *deferred, int timeout_ms) {
  std::vector<std::uint64_t> late;
  late.swap(*deferred);
  int n = mgffi_poll(s.m, timeout_ms);
  if (n < 0) std::abort();
  drain_events(s.m, n, mode, deferred);
  // Deferred replies from the previous poll: the request views must still
  // be readable (the glue keeps them until the reply).
  for (std::uint64_t id : late) {
    mgffi_http_reply(s.m, id, 202, nullptr, 0, "late\n", 5);
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1) return 0;
  Server &s = server();
  const fuzz::Input in{data[0], data + 1, size - 1};
  const unsigned mode = (in.variant >> 3) & 3;
  std::vector<std::uint64_t> deferred;
  int fd = fuzz::connect_client(s.ports[in.variant & 1], [&] { poll_once(s, mode, &deferred, 1); });
  // The server must notice and drop the connection: back to the listeners.
  fuzz::run_connection(
      s.m, fd, in, [&] { return poll_once(s, mode, &deferred, 0); },
      [&] { poll_once(s, mode, &deferred, 1); }, 2, 200, "a connection outlived its client");
  return 0;
}

#ifdef MGFFI_FUZZ_REPLAY
int main(int argc, char **argv) {
  return fuzz::replay_main(argc, argv);
}
#endif
