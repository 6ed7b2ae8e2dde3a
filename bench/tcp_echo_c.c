// tcp_echo_c: the pure-C baseline of bench/run.sh's tcp_echo benchmark. A
// Mongoose TCP server that sends every byte it reads back to its sender,
// built from the same mongoose.c and with the same compile-time settings as
// the mongoose_ffi library (see CMakeLists.txt, target bench_c_tcp_echo).
// Uses only the public mongoose.h API.
//
//   bench_c_tcp_echo [port]    (default 8111; listens on 127.0.0.1 only)
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
  (void)ev_data;
  if (ev == MG_EV_READ) {
    mg_send(c, c->recv.buf, c->recv.len);
    c->recv.len = 0;
  }
}

int main(int argc, char *argv[]) {
  int port = argc > 1 ? atoi(argv[1]) : 8111;
  char url[64];
  struct mg_mgr mgr;

  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s [port]\n", argv[0]);
    return 2;
  }
  snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  mg_log_set(MG_LL_NONE);
  mg_mgr_init(&mgr);
  if (mg_listen(&mgr, url, handler, NULL) == NULL) {
    fprintf(stderr, "cannot listen on %s\n", url);
    mg_mgr_free(&mgr);
    return 1;
  }
  while (!s_stop) mg_mgr_poll(&mgr, 1000);
  mg_mgr_free(&mgr);
  return 0;
}
