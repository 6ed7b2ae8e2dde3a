// echo_c: the pure-C baseline of bench/run.sh's tcp_echo and udp_echo
// benchmarks. A Mongoose TCP server that sends every byte it reads back to
// its sender, or a UDP server that sends every datagram back to its sender,
// built from the same mongoose.c and with the same compile-time settings as
// the mongoose_ffi library (see CMakeLists.txt, target bench_c_echo). Uses
// only the public mongoose.h API (the main loop: bench_server.h).
//
//   bench_c_echo tcp|udp [port]    (default 8111 for tcp, 8113 for udp;
//                                   listens on 127.0.0.1 only)
//
// Stops on SIGINT or SIGTERM.
#include "bench_server.h"

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  (void)ev_data;
  if (ev == MG_EV_READ) {
    // For UDP, c->rem is the sender of the datagram just read.
    mg_send(c, c->recv.buf, c->recv.len);
    c->recv.len = 0;
  }
}

int main(int argc, char *argv[]) {
  const char *proto = argc > 1 ? argv[1] : "";
  int udp = strcmp(proto, "udp") == 0;
  int port = bench_port_arg(argc, argv, 2, udp ? 8113 : 8111);
  if ((!udp && strcmp(proto, "tcp") != 0) || port < 0)
    return bench_usage(argv[0], "tcp|udp [port]");
  return bench_serve(proto, port, handler);
}
