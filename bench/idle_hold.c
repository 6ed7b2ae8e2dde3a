// idle_hold: the idle connections of bench/scale.sh. Opens N connections to
// a server on 127.0.0.1, makes each one a keep-alive HTTP connection after
// one request (-k http: GET /, the whole response read) or an open
// WebSocket (-k ws: the handshake to /ws, the 101 read), prints
// "ready N", then keeps them open and quiet until SIGTERM or SIGINT
// (answering pings, as a WebSocket client must), and prints "alive M": how
// many the server had not closed. Plain sockets, no Mongoose.
//
//   bench_idle_hold -p PORT -n N -k http|ws [-t SECONDS]
//
// Source addresses rotate over 127.0.0.2-127.0.0.201 so that N stays far
// from the ephemeral port range of one address, and sockets close with a
// reset (no TIME_WAIT left for the next run). -t bounds the whole run
// (default 600 s). Raises its own descriptor limit to the hard limit.
#define _GNU_SOURCE
#define BENCH_NAME "idle_hold"
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench_util.h"

#define USAGE "-p PORT -n N -k http|ws [-t SECONDS]"

// Reads from fd until buf holds "\r\n\r\n" and, for HTTP, Content-Length
// bytes after it. Returns 0, or -1 (closed, timed out, too long).
static int read_response(int fd, int http) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
    if (n <= 0) return -1;
    len += (size_t)n;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end != NULL) {
      if (!http) return strncmp(buf, "HTTP/1.1 101", 12) == 0 ? 0 : -1;
      const char *cl = strcasestr(buf, "\r\nContent-Length:");
      size_t body = cl != NULL ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
      if (len >= (size_t)(end + 4 - buf) + body) return strncmp(buf + 9, "200", 3) == 0 ? 0 : -1;
    }
    if (len == sizeof(buf) - 1) return -1;
  }
}

static int open_one(int port, int i, int http) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  struct linger lg = {1, 0};  // close with a reset: no TIME_WAIT
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  struct sockaddr_in src = {0};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl((127u << 24) | (unsigned)(2 + i % 200));
  struct sockaddr_in dst = bench_loopback(port);
  if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
      connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
    close(fd);
    return -1;
  }
  static const char kHttp[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  static const char kWs[] =
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "User-Agent: bench_idle_hold\r\nOrigin: http://127.0.0.1\r\n\r\n";
  const char *req = http ? kHttp : kWs;
  size_t req_len = http ? sizeof(kHttp) - 1 : sizeof(kWs) - 1;
  if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len || read_response(fd, http) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A server's ping gets a (masked) pong with its payload; other input is
// ignored. Returns -1 when the server closed the connection.
static int on_input(int fd, int http) {
  unsigned char buf[512];
  ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n == 0) return -1;
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (!http && n >= 2 && (buf[0] & 0x0f) == 0x9 && (buf[1] & 0x7f) <= 125 &&
      n >= 2 + (buf[1] & 0x7f)) {
    size_t plen = buf[1] & 0x7f;
    unsigned char pong[2 + 4 + 125];
    pong[0] = 0x8a;
    pong[1] = (unsigned char)(0x80 | plen);
    memset(pong + 2, 0, 4);  // a zero mask: the payload as it is
    memcpy(pong + 6, buf + 2, plen);
    send(fd, pong, 6 + plen, MSG_NOSIGNAL);
  }
  return 0;
}

int main(int argc, char *argv[]) {
  int port = 0, n = 0, http = -1, limit_s = 600, opt;
  while ((opt = getopt(argc, argv, "p:n:k:t:")) != -1) {
    if (opt == 'p')
      port = bench_port(optarg);
    else if (opt == 'n')
      n = atoi(optarg);
    else if (opt == 'k')
      http = strcmp(optarg, "http") == 0 ? 1 : strcmp(optarg, "ws") == 0 ? 0 : -1;
    else if (opt == 't')
      limit_s = atoi(optarg);
    else
      return bench_usage(argv[0], USAGE);
  }
  if (port <= 0 || n < 0 || http < 0 || limit_s <= 0) return bench_usage(argv[0], USAGE);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  bench_signals();
  alarm((unsigned)limit_s);
  signal(SIGALRM, bench_on_signal);

  int ep = epoll_create1(0);
  int *fds = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
  if (ep < 0 || fds == NULL) return 1;
  int opened = 0;
  for (int i = 0; i < n && !bench_stop; i++) {
    int fd = open_one(port, i, http);
    if (fd < 0) {
      fprintf(stderr, "idle_hold: connection %d failed: %s\n", i + 1, strerror(errno));
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    fds[opened++] = fd;
  }
  printf("ready %d\n", opened);
  fflush(stdout);
  int alive = opened;
  struct epoll_event evs[256];
  while (!bench_stop) {
    int k = epoll_wait(ep, evs, 256, 1000);
    for (int j = 0; j < k; j++) {
      int fd = evs[j].data.fd;
      if ((evs[j].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 || on_input(fd, http) < 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        alive--;
      }
    }
  }
  printf("alive %d\n", alive);
  fflush(stdout);
  for (int i = 0; i < opened; i++) close(fds[i]);
  free(fds);
  return 0;
}
