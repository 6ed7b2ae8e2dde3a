// ws_echo_c: the pure-C baseline of the ws_echo benchmark in bench/run.sh.
// A Mongoose WebSocket echo server: every HTTP request with a
// Sec-WebSocket-Key is upgraded to a WebSocket (any path), and every
// message is sent back with its opcode (text or binary); other requests get
// c_hello_server's 200 "hello, world\n" (bench/scale.sh loads them while
// WebSockets are idle). Built from the same mongoose.c and with the same
// compile-time settings as the mongoose_ffi library (see CMakeLists.txt,
// target bench_c_ws_echo). Uses only the public mongoose.h API (the main
// loop: bench_server.h).
//
//   bench_c_ws_echo [port]    (default 8103; listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include "bench_server.h"

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_message *hm = (struct mg_http_message *)ev_data;
    if (mg_http_get_header(hm, "Sec-WebSocket-Key") != NULL) {
      mg_ws_upgrade(c, hm, NULL);
    } else {
      bench_hello(c);
    }
  } else if (ev == MG_EV_WS_MSG) {
    struct mg_ws_message *wm = (struct mg_ws_message *)ev_data;
    int op = (wm->flags & 15) == WEBSOCKET_OP_BINARY ? WEBSOCKET_OP_BINARY : WEBSOCKET_OP_TEXT;
    mg_ws_send(c, wm->data.buf, wm->data.len, op);
  }
}

int main(int argc, char *argv[]) {
  int port = bench_port_arg(argc, argv, 1, 8103);
  if (port < 0) return bench_usage(argv[0], "[port]");
  return bench_serve("http", port, handler);
}
