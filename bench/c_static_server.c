// c_static_server: the pure-C baseline of bench/static.sh. A Mongoose HTTP
// server that answers every request from a directory with Mongoose's own
// mg_http_serve_dir (default options), built from the same mongoose.c and
// with the same compile-time settings as the mongoose_ffi library (see
// CMakeLists.txt, target bench_c_static). Uses only the public mongoose.h
// API.
//
//   bench_c_static ROOT [port]    (default 8141; listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "mongoose.h"

static volatile sig_atomic_t s_stop = 0;
static const char *s_root = ".";

static void on_signal(int signo) {
  (void)signo;
  s_stop = 1;
}

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_serve_opts opts = {0};
    opts.root_dir = s_root;
    mg_http_serve_dir(c, (struct mg_http_message *)ev_data, &opts);
  }
}

int main(int argc, char *argv[]) {
  int port = argc > 2 ? atoi(argv[2]) : 8141;
  char url[64];
  struct mg_mgr mgr;

  if (argc < 2 || port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s ROOT [port]\n", argv[0]);
    return 2;
  }
  s_root = argv[1];
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
