// c_https_hello: the pure-C baseline of the https_hello benchmark in
// bench/run.sh. A Mongoose HTTPS server that answers every request with 200
// "hello, world\n" (text/plain), built from the same mongoose.c, with the
// same compile-time settings and the same TLS library as the mongoose_ffi
// library (see CMakeLists.txt, target bench_c_https_hello). Uses only the
// public mongoose.h API (the main loop: bench_server.h).
//
//   bench_c_https_hello CERT_FILE KEY_FILE [port]
//
// CERT_FILE and KEY_FILE are PEM files; listens on 127.0.0.1 only (default
// port 8108). Stops on SIGINT or SIGTERM.
#include "bench_server.h"

static struct mg_str s_cert, s_key;

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  (void)ev_data;
  if (ev == MG_EV_ACCEPT) {
    struct mg_tls_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.cert = s_cert;
    opts.key = s_key;
    mg_tls_init(c, &opts);
  } else if (ev == MG_EV_HTTP_MSG) {
    bench_hello(c);
  }
}

int main(int argc, char *argv[]) {
  int port = bench_port_arg(argc, argv, 3, 8108), status;
  if (argc < 3 || port < 0) return bench_usage(argv[0], "CERT_FILE KEY_FILE [port]");
  s_cert = mg_file_read(&mg_fs_posix, argv[1]);
  s_key = mg_file_read(&mg_fs_posix, argv[2]);
  if (s_cert.buf == NULL || s_key.buf == NULL) {
    fprintf(stderr, "cannot read %s\n", s_cert.buf == NULL ? argv[1] : argv[2]);
    return 1;
  }
  status = bench_serve("https", port, handler);
  free((void *)s_cert.buf);
  free((void *)s_key.buf);
  return status;
}
