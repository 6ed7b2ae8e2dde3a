// ws_load: the load client of the ws_echo benchmark in bench/run.sh. Plain
// sockets and epoll, no Mongoose: opens N WebSocket connections to
// 127.0.0.1:PORT, then on each one sends a window of W small masked text
// frames in one write, waits for all W echoes (checking each one's opcode,
// length and payload), and sends the next window. Counts the echoes that
// arrive during the measured seconds, after a warm-up.
//
//   bench_ws_load -p PORT [-c connections] [-w window] [-s size]
//                 [-d seconds] [-W warm-up seconds]
//
// Prints one line: "ws_load: ... msg/s N". Exits non-zero on any protocol
// error, a closed connection or a stall (no echo at all for 5 s).
#define _GNU_SOURCE
#define BENCH_NAME "ws_load"
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "bench_util.h"

struct conn {
  int fd;
  unsigned char *rbuf;  // unparsed received bytes
  size_t rlen, rcap;
  size_t wpos;   // bytes of the current window already written
  int pending;   // echoes still expected for the current window
  int want_out;  // registered for EPOLLOUT
};

static int s_window = 16;
static size_t s_size = 32;
static unsigned char *s_frames;  // one window of masked frames
static size_t s_frames_len;
static unsigned char *s_payload;  // the unmasked payload every echo must carry

// Builds the client frame (FIN, text, masked) for payload into out; returns
// its length.
static size_t build_frame(unsigned char *out, const unsigned char *payload, size_t len,
                          const unsigned char mask[4]) {
  size_t n = 0, i;
  out[n++] = 0x81;
  if (len < 126) {
    out[n++] = (unsigned char)(0x80 | len);
  } else if (len < 65536) {
    out[n++] = 0x80 | 126;
    out[n++] = (unsigned char)(len >> 8);
    out[n++] = (unsigned char)(len & 0xff);
  } else {
    bench_fail("message size must be below 65536");
  }
  memcpy(out + n, mask, 4);
  n += 4;
  for (i = 0; i < len; i++) out[n + i] = payload[i] ^ mask[i % 4];
  return n + len;
}

static int connect_ws(int port) {
  char req[512], resp[4096];
  size_t got = 0;
  int one = 1;
  int fd = bench_connect(SOCK_STREAM, port);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int n = snprintf(req, sizeof(req),
                   "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   port);
  if (write(fd, req, (size_t)n) != n) bench_die("handshake write");
  // The server sends nothing after its 101 until we send, so reading up to
  // the blank line never swallows frame bytes.
  while (got < sizeof(resp) - 1) {
    ssize_t r = read(fd, resp + got, 1);
    if (r <= 0) bench_die("handshake read");
    got++;
    resp[got] = 0;
    if (got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0) break;
  }
  if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
    fprintf(stderr, "ws_load: handshake refused: %.80s\n", resp);
    exit(1);
  }
  return fd;
}

static int fcntl_nonblock(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void set_events(int ep, struct conn *c, int want_out) {
  if (c->want_out == want_out) return;
  bench_epoll(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | (want_out ? EPOLLOUT : 0), c);
  c->want_out = want_out;
}

// Writes what is left of the current window.
static void flush_window(int ep, struct conn *c) {
  while (c->wpos < s_frames_len) {
    ssize_t w = write(c->fd, s_frames + c->wpos, s_frames_len - c->wpos);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      bench_die("write");
    }
    c->wpos += (size_t)w;
  }
  set_events(ep, c, c->wpos < s_frames_len);
}

static void start_window(int ep, struct conn *c) {
  c->wpos = 0;
  c->pending = s_window;
  flush_window(ep, c);
}

// Parses whole frames out of c->rbuf; returns the number of echoes.
static long parse(struct conn *c) {
  long echoes = 0;
  size_t off = 0;
  while (c->rlen - off >= 2) {
    const unsigned char *p = c->rbuf + off;
    size_t hdr = 2;
    uint64_t len = p[1] & 0x7f;
    if (p[1] & 0x80) bench_fail("the server sent a masked frame");
    if (len == 126) {
      if (c->rlen - off < 4) break;
      len = ((uint64_t)p[2] << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      bench_fail("unexpected 64-bit frame length");
    }
    if (c->rlen - off < hdr + len) break;
    if ((p[0] & 0x0f) == 8) bench_fail("the server closed a connection");
    if (p[0] != 0x81) bench_fail("unexpected frame type (want a final text frame)");
    if (len != s_size || memcmp(p + hdr, s_payload, s_size) != 0) bench_fail("echo differs");
    off += hdr + (size_t)len;
    echoes++;
  }
  memmove(c->rbuf, c->rbuf + off, c->rlen - off);
  c->rlen -= off;
  return echoes;
}

#define USAGE "-p port [-c conns] [-w window] [-s size] [-d secs] [-W warmup]"

int main(int argc, char *argv[]) {
  struct bench_run run = {0, 5, 1};
  int nconns = 50, opt, i;
  unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  unsigned char *one_frame;
  size_t frame_len;
  struct conn *conns;
  struct epoll_event events[256];
  int ep;
  long counted = 0;
  double t0, t_measure, t_end, t_last_echo;

  while ((opt = getopt(argc, argv, "p:c:w:s:d:W:")) != -1) {
    if (bench_run_option(&run, opt, optarg)) continue;
    switch (opt) {
      case 'c': nconns = atoi(optarg); break;
      case 'w': s_window = atoi(optarg); break;
      case 's': s_size = (size_t)atol(optarg); break;
      default: return bench_usage(argv[0], USAGE);
    }
  }
  if (!bench_run_ok(&run) || nconns <= 0 || s_window <= 0 || s_size == 0 || s_size >= 65536) {
    return bench_usage(argv[0], USAGE);
  }
  signal(SIGPIPE, SIG_IGN);

  s_payload = malloc(s_size);
  one_frame = malloc(s_size + 8);
  s_frames = malloc((s_size + 8) * (size_t)s_window);
  if (!s_payload || !one_frame || !s_frames) bench_fail("out of memory");
  for (i = 0; i < (int)s_size; i++) s_payload[i] = (unsigned char)('a' + i % 26);
  frame_len = build_frame(one_frame, s_payload, s_size, mask);
  for (i = 0; i < s_window; i++) memcpy(s_frames + (size_t)i * frame_len, one_frame, frame_len);
  s_frames_len = frame_len * (size_t)s_window;

  ep = epoll_create1(0);
  if (ep < 0) bench_die("epoll_create1");
  conns = calloc((size_t)nconns, sizeof(*conns));
  if (!conns) bench_fail("out of memory");
  for (i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    c->fd = connect_ws(run.port);
    c->rcap = 65536;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) bench_fail("out of memory");
    if (fcntl_nonblock(c->fd) != 0) bench_die("fcntl");
    bench_epoll(ep, EPOLL_CTL_ADD, c->fd, EPOLLIN, c);
  }
  for (i = 0; i < nconns; i++) start_window(ep, &conns[i]);

  t0 = bench_now();
  t_measure = t0 + run.warmup;
  t_end = t_measure + run.seconds;
  t_last_echo = t0;
  for (;;) {
    double t = bench_now();
    int n, k;
    if (t >= t_end) break;
    if (t - t_last_echo > 5) bench_fail("stalled: no echo for 5 s");
    n = epoll_wait(ep, events, 256, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      bench_die("epoll_wait");
    }
    t = bench_now();
    for (k = 0; k < n; k++) {
      struct conn *c = events[k].data.ptr;
      if (events[k].events & EPOLLOUT) flush_window(ep, c);
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          long e;
          ssize_t r;
          size_t room = c->rcap - c->rlen;
          if (room == 0) bench_fail("receive buffer full");
          r = read(c->fd, c->rbuf + c->rlen, room);
          if (r == 0) bench_fail("the server closed a connection");
          if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            bench_die("read");
          }
          c->rlen += (size_t)r;
          e = parse(c);
          if (e > 0) {
            t_last_echo = t;
            if (t >= t_measure && t < t_end) counted += e;
            c->pending -= (int)e;
            if (c->pending < 0) bench_fail("more echoes than messages sent");
            if (c->pending == 0) start_window(ep, c);
          }
          if ((size_t)r < room) break;  // a short read: the socket is drained
        }
      }
    }
  }
  printf("ws_load: connections %d window %d size %zu seconds %.1f messages %ld msg/s %.0f\n",
         nconns, s_window, s_size, run.seconds, counted, (double)counted / run.seconds);
  for (i = 0; i < nconns; i++) close(conns[i].fd);
  return 0;
}
