// c_hello_server: the pure-C baseline of bench/run.sh. A Mongoose HTTP
// server that answers every request with 200 "hello, world\n"
// (text/plain), built from the same mongoose.c and with the same
// compile-time settings as the mongoose_ffi library (see CMakeLists.txt,
// target bench_c_hello). Uses only the public mongoose.h API (the main loop:
// bench_server.h).
//
//   bench_c_hello [port]    (default 8101; listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include "bench_server.h"

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  (void)ev_data;
  if (ev == MG_EV_HTTP_MSG) bench_hello(c);
}

int main(int argc, char *argv[]) {
  int port = bench_port_arg(argc, argv, 1, 8101);
  if (port < 0) return bench_usage(argv[0], "[port]");
  return bench_serve("http", port, handler);
}
