// tcp_load: the load client of the tcp_echo benchmark in bench/run.sh.
// Plain sockets and epoll, no Mongoose: opens N connections to
// 127.0.0.1:PORT; each one keeps writing CHUNK-byte blocks while less than
// WINDOW bytes are unanswered, and reads the echo back, checking every byte
// against the pattern it sent. Counts the echoed bytes that arrive during
// the measured seconds, after a warm-up.
//
//   bench_tcp_load -p PORT [-c connections] [-s chunk bytes] [-w window bytes]
//                  [-d seconds] [-W warm-up seconds]
//
// Prints one line: "tcp_load: ... bytes N seconds S MB/s X" (MB = 10^6
// bytes). Exits non-zero on a wrong byte, a closed connection or a stall
// (no byte at all for 5 s).
#define _GNU_SOURCE
#define BENCH_NAME "tcp_load"
#include <fcntl.h>
#include <unistd.h>

#include "bench_util.h"

#define USAGE "-p PORT [-c conns] [-s chunk] [-w window] [-d secs] [-W warmup]"
#define PATTERN_PERIOD 251  // a prime, so that blocks do not line up

struct conn {
  int fd;
  uint64_t sent;      // bytes written
  uint64_t received;  // bytes read back (and checked)
  int want_out;       // EPOLLOUT registered
};

static void set_events(int ep, struct conn *c, int want_out) {
  if (c->want_out == want_out) return;
  bench_epoll(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | (want_out ? EPOLLOUT : 0), c);
  c->want_out = want_out;
}

int main(int argc, char *argv[]) {
  struct bench_run run = {0, 10, 1};
  int nconns = 8, opt;
  size_t chunk = 64 * 1024, window = 1024 * 1024;
  while ((opt = getopt(argc, argv, "p:c:s:w:d:W:")) != -1) {
    if (bench_run_option(&run, opt, optarg)) continue;
    switch (opt) {
      case 'c': nconns = atoi(optarg); break;
      case 's': chunk = (size_t)atol(optarg); break;
      case 'w': window = (size_t)atol(optarg); break;
      default: return bench_usage(argv[0], USAGE);
    }
  }
  if (!bench_run_ok(&run) || nconns <= 0 || chunk == 0 || window < chunk) {
    fprintf(stderr, "tcp_load: bad arguments\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  // The pattern: byte i of a stream is pattern[i % PATTERN_PERIOD]; the
  // send buffer holds chunk + PATTERN_PERIOD bytes so that any offset works.
  unsigned char *out = malloc(chunk + PATTERN_PERIOD);
  unsigned char *in = malloc(chunk);
  struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
  if (out == NULL || in == NULL || conns == NULL) bench_die("malloc");
  for (size_t i = 0; i < chunk + PATTERN_PERIOD; i++)
    out[i] = (unsigned char)((i % PATTERN_PERIOD) * 7 + 3);

  int ep = epoll_create1(0);
  if (ep < 0) bench_die("epoll_create1");
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    c->fd = bench_connect(SOCK_STREAM, run.port);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->want_out = 1;
    bench_epoll(ep, EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLOUT, c);
  }

  double start = bench_now(), measure_from = start + run.warmup, end = measure_from + run.seconds;
  double last_progress = start;
  uint64_t counted = 0;
  struct epoll_event events[64];
  for (;;) {
    double t = bench_now();
    if (t >= end) break;
    if (t - last_progress > 5) bench_fail("stalled (no byte for 5 s)");
    int n = epoll_wait(ep, events, 64, 100);
    if (n < 0 && errno != EINTR) bench_die("epoll_wait");
    int measuring = bench_now() >= measure_from;
    for (int k = 0; k < n; k++) {
      struct conn *c = events[k].data.ptr;
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t r = read(c->fd, in, chunk);
          if (r == 0) bench_fail("the server closed a connection");
          if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            bench_die("read");
          }
          size_t off = (size_t)(c->received % PATTERN_PERIOD);
          if (memcmp(in, out + off, (size_t)r) != 0) {
            fprintf(stderr, "tcp_load: wrong bytes at offset %llu\n",
                    (unsigned long long)c->received);
            return 1;
          }
          c->received += (uint64_t)r;
          if (measuring) counted += (uint64_t)r;
          last_progress = bench_now();
          if ((size_t)r < chunk) break;
        }
      }
      // Write while less than window bytes are unanswered.
      while (c->sent - c->received < window) {
        size_t off = (size_t)(c->sent % PATTERN_PERIOD);
        ssize_t w = write(c->fd, out + off, chunk);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          bench_die("write");
        }
        c->sent += (uint64_t)w;
      }
      set_events(ep, c, c->sent - c->received < window);
    }
  }
  double measured = bench_now() - measure_from;
  printf("tcp_load: connections %d chunk %zu window %zu bytes %llu seconds %.2f MB/s %.1f\n",
         nconns, chunk, window, (unsigned long long)counted, measured,
         (double)counted / measured / 1e6);
  for (int i = 0; i < nconns; i++) close(conns[i].fd);
  free(out);
  free(in);
  free(conns);
  return 0;
}
