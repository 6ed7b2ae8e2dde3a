// c_https_hello: the pure-C baseline of the https_hello benchmark in
// bench/run.sh. A Mongoose HTTPS server that answers every request with 200
// "hello, world\n" (text/plain), built from the same mongoose.c, with the
// same compile-time settings and the same TLS library as the mongoose_ffi
// library (see CMakeLists.txt, target bench_c_https_hello). Uses only the
// public mongoose.h API.
//
//   bench_c_https_hello CERT_FILE KEY_FILE [port]
//
// CERT_FILE and KEY_FILE are PEM files; listens on 127.0.0.1 only (default
// port 8108). Stops on SIGINT or SIGTERM.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongoose.h"

static volatile sig_atomic_t s_stop = 0;
static struct mg_str s_cert, s_key;

static void on_signal(int signo) {
  (void)signo;
  s_stop = 1;
}

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_ACCEPT) {
    struct mg_tls_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.cert = s_cert;
    opts.key = s_key;
    mg_tls_init(c, &opts);
  } else if (ev == MG_EV_HTTP_MSG) {
    (void)ev_data;
    mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello, world\n");
  }
}

int main(int argc, char *argv[]) {
  int port = argc > 3 ? atoi(argv[3]) : 8108;
  char url[64];
  struct mg_mgr mgr;

  if (argc < 3 || port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s CERT_FILE KEY_FILE [port]\n", argv[0]);
    return 2;
  }
  s_cert = mg_file_read(&mg_fs_posix, argv[1]);
  s_key = mg_file_read(&mg_fs_posix, argv[2]);
  if (s_cert.buf == NULL || s_key.buf == NULL) {
    fprintf(stderr, "cannot read %s\n", s_cert.buf == NULL ? argv[1] : argv[2]);
    return 1;
  }
  snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);

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
  free((void *)s_cert.buf);
  free((void *)s_key.buf);
  return 0;
}
