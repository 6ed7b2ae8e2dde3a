// ws_echo_c: the pure-C baseline of the ws_echo benchmark in bench/run.sh.
// A Mongoose WebSocket echo server: every HTTP request with a
// Sec-WebSocket-Key is upgraded to a WebSocket (any path), and every
// message is sent back with its opcode (text or binary); other requests get
// c_hello_server's 200 "hello, world\n" (bench/scale.sh loads them while
// WebSockets are idle). Built from the same mongoose.c and with the same
// compile-time settings as the mongoose_ffi library (see CMakeLists.txt,
// target bench_c_ws_echo). Uses only the public mongoose.h API.
//
//   bench_c_ws_echo [port]    (default 8103; listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "mongoose.h"

static volatile sig_atomic_t s_stop = 0;

static void on_signal(int signo) {
  (void)signo;
  s_stop = 1;
}

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_message *hm = (struct mg_http_message *)ev_data;
    if (mg_http_get_header(hm, "Sec-WebSocket-Key") != NULL) {
      mg_ws_upgrade(c, hm, NULL);
    } else {
      mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello, world\n");
    }
  } else if (ev == MG_EV_WS_MSG) {
    struct mg_ws_message *wm = (struct mg_ws_message *)ev_data;
    int op = (wm->flags & 15) == WEBSOCKET_OP_BINARY ? WEBSOCKET_OP_BINARY : WEBSOCKET_OP_TEXT;
    mg_ws_send(c, wm->data.buf, wm->data.len, op);
  }
}

int main(int argc, char *argv[]) {
  int port = argc > 1 ? atoi(argv[1]) : 8103;
  char url[64];
  struct mg_mgr mgr;

  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s [port]\n", argv[0]);
    return 2;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  mg_log_set(MG_LL_NONE);  // as the Lua API's default (mongoose_log_level "none")
  mg_mgr_init(&mgr);
  if (mg_http_listen(&mgr, url, handler, NULL) == NULL) {
    fprintf(stderr, "cannot listen on %s\n", url);
    mg_mgr_free(&mgr);
    return 1;
  }
  while (!s_stop) mg_mgr_poll(&mgr, 1000);
  mg_mgr_free(&mgr);
  return 0;
}
