// udp_load: the load client of the udp_echo benchmark in bench/run.sh.
// Plain sockets, no Mongoose: sends numbered SIZE-byte datagrams to
// 127.0.0.1:PORT keeping WINDOW of them in flight; each echo (checked)
// lets one more go. When nothing comes back for 100 ms the window is
// counted as lost and sent anew. Counts the echoes that arrive during the
// measured seconds, after a warm-up.
//
//   bench_udp_load -p PORT [-w window] [-s size] [-d seconds] [-W warm-up seconds]
//
// Prints one line: "udp_load: ... datagrams N lost L seconds S dgram/s X".
// Exits non-zero on a wrong echo or a stall (no echo at all for 5 s).
#define _GNU_SOURCE
#define BENCH_NAME "udp_load"
#include <poll.h>
#include <unistd.h>

#include "bench_util.h"

static uint64_t next_seq = 0;

static void send_one(int fd, unsigned char *buf, size_t size) {
  memcpy(buf, &next_seq, sizeof(next_seq));
  next_seq++;
  if (send(fd, buf, size, 0) < 0 && errno != ECONNREFUSED) bench_die("send");
}

int main(int argc, char *argv[]) {
  struct bench_run run = {0, 10, 1};
  int window = 50, opt;
  size_t size = 64;
  while ((opt = getopt(argc, argv, "p:w:s:d:W:")) != -1) {
    if (bench_run_option(&run, opt, optarg)) continue;
    switch (opt) {
      case 'w': window = atoi(optarg); break;
      case 's': size = (size_t)atol(optarg); break;
      default: return bench_usage(argv[0], "-p PORT [-w window] [-s size] [-d secs] [-W warmup]");
    }
  }
  if (!bench_run_ok(&run) || window <= 0 || size < 8 || size > 65000) {
    fprintf(stderr, "udp_load: bad arguments\n");
    return 2;
  }
  unsigned char *out = malloc(size), *in = malloc(65536);
  if (out == NULL || in == NULL) bench_die("malloc");
  for (size_t i = 0; i < size; i++) out[i] = (unsigned char)('a' + i % 26);

  int fd = bench_connect(SOCK_DGRAM, run.port);

  for (int i = 0; i < window; i++) send_one(fd, out, size);
  double start = bench_now(), measure_from = start + run.warmup, end = measure_from + run.seconds;
  double last_echo = start;
  uint64_t counted = 0, lost = 0;
  struct pollfd pfd = {fd, POLLIN, 0};
  for (;;) {
    double t = bench_now();
    if (t >= end) break;
    if (t - last_echo > 5) bench_fail("stalled (no echo for 5 s)");
    int n = poll(&pfd, 1, 100);
    if (n < 0 && errno != EINTR) bench_die("poll");
    if (n == 0) {  // 100 ms of silence: the window is lost, start anew
      lost += (uint64_t)window;
      for (int i = 0; i < window; i++) send_one(fd, out, size);
      continue;
    }
    int measuring = bench_now() >= measure_from;
    for (;;) {
      ssize_t r = recv(fd, in, 65536, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) break;
        bench_die("recv");
      }
      if ((size_t)r != size || memcmp(in + 8, out + 8, size - 8) != 0) {
        fprintf(stderr, "udp_load: wrong echo (%zd bytes)\n", r);
        return 1;
      }
      if (measuring) counted++;
      last_echo = bench_now();
      send_one(fd, out, size);
    }
  }
  double measured = bench_now() - measure_from;
  printf("udp_load: window %d size %zu datagrams %llu lost %llu seconds %.2f dgram/s %.0f\n",
         window, size, (unsigned long long)counted, (unsigned long long)lost, measured,
         (double)counted / measured);
  close(fd);
  free(out);
  free(in);
  return 0;
}
