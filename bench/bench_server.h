// bench_server.h: the main loop of the pure-C Mongoose baselines of bench/
// (c_hello_server.c, c_https_hello.c, c_static_server.c, ws_echo_c.c,
// echo_c.c). They are "pure-C Mongoose with the same build flags" as the
// mongoose_ffi library (the CMake targets use the same mongoose.c and
// Mongoose settings), so this header too uses only mongoose.h's public API,
// with the Lua API's default log level.
#ifndef BENCH_SERVER_H
#define BENCH_SERVER_H

#include "bench_util.h"
#include "mongoose.h"

// The answer of the hello-world servers: 200 "hello, world\n" (text/plain).
static inline void bench_hello(struct mg_connection *c) {
  mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello, world\n");
}

// Listens on scheme://127.0.0.1:port with fn (mg_http_listen for http and
// https, mg_listen for tcp and udp) and polls until SIGINT or SIGTERM.
// Returns main's exit status: 0, or 1 when it cannot listen.
static inline int bench_serve(const char *scheme, int port, mg_event_handler_t fn) {
  char url[64];
  struct mg_mgr mgr;
  struct mg_connection *listener;
  snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, port);
  bench_signals();
  mg_log_set(MG_LL_NONE);  // as the Lua API's default (mongoose_log_level "none")
  mg_mgr_init(&mgr);
  listener = strncmp(scheme, "http", 4) == 0 ? mg_http_listen(&mgr, url, fn, NULL)
                                             : mg_listen(&mgr, url, fn, NULL);
  if (listener == NULL) {
    fprintf(stderr, "cannot listen on %s\n", url);
    mg_mgr_free(&mgr);
    return 1;
  }
  while (!bench_stop) mg_mgr_poll(&mgr, 1000);
  mg_mgr_free(&mgr);
  return 0;
}

#endif  // BENCH_SERVER_H
