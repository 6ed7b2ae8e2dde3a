// c_static_server: the pure-C baseline of bench/static.sh. A Mongoose HTTP
// server that answers every request from a directory with Mongoose's own
// mg_http_serve_dir (default options), built from the same mongoose.c and
// with the same compile-time settings as the mongoose_ffi library (see
// CMakeLists.txt, target bench_c_static). Uses only the public mongoose.h
// API (the main loop: bench_server.h).
//
//   bench_c_static ROOT [port]    (default 8141; listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include "bench_server.h"

static const char *s_root = ".";

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_serve_opts opts = {0};
    opts.root_dir = s_root;
    mg_http_serve_dir(c, (struct mg_http_message *)ev_data, &opts);
  }
}

int main(int argc, char *argv[]) {
  int port = bench_port_arg(argc, argv, 2, 8141);
  if (argc < 2 || port < 0) return bench_usage(argv[0], "ROOT [port]");
  s_root = argv[1];
  return bench_serve("http", port, handler);
}
