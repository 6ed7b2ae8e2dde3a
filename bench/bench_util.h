// bench_util.h: what the C programs of bench/ share, as static inline
// helpers on libc and plain sockets, no Mongoose (the Mongoose baselines add
// bench_server.h): a stop flag set by SIGINT and SIGTERM, port arguments, a
// monotonic clock, fatal errors, loopback addresses and epoll registration.
//
// A program defines BENCH_NAME (its name in error messages, e.g.
// "tcp_load") before including this header.
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#ifndef BENCH_NAME
#define BENCH_NAME "bench"
#endif

// Set by SIGINT and SIGTERM once bench_signals has run (and by any other
// signal a program points at bench_on_signal).
static volatile sig_atomic_t bench_stop = 0;

static inline void bench_on_signal(int signo) {
  (void)signo;
  bench_stop = 1;
}

// SIGINT and SIGTERM set bench_stop; SIGPIPE is ignored, so that a write to
// a connection the peer closed fails (EPIPE) instead of ending the program.
static inline void bench_signals(void) {
  signal(SIGINT, bench_on_signal);
  signal(SIGTERM, bench_on_signal);
  signal(SIGPIPE, SIG_IGN);
}

// Prints "usage: ARGV0 ARGS" on stderr; returns 2, main's status for it.
static inline int bench_usage(const char *argv0, const char *args) {
  fprintf(stderr, "usage: %s %s\n", argv0, args);
  return 2;
}

// The TCP or UDP port written in text (1 to 65535), or -1.
static inline int bench_port(const char *text) {
  char *end;
  long port = strtol(text, &end, 10);
  return end != text && *end == '\0' && port > 0 && port <= 65535 ? (int)port : -1;
}

// argv[i] as a port (-1 when it is not one), or fallback when argc has no
// argument i.
static inline int bench_port_arg(int argc, char *argv[], int i, int fallback) {
  return argc > i ? bench_port(argv[i]) : fallback;
}

// What a load client runs, from the options they all take: -p PORT (its
// server's, on 127.0.0.1), -d SECONDS (measured) and -W SECONDS (a warm-up,
// unmeasured, before them).
struct bench_run {
  int port;  // 0 until -p is given, -1 when -p is not a port
  double seconds;
  double warmup;
};

// Takes getopt's opt (with its argument) when it is -p, -d or -W; returns 0
// for any other option.
static inline int bench_run_option(struct bench_run *run, int opt, const char *arg) {
  switch (opt) {
    case 'p': run->port = bench_port(arg); return 1;
    case 'd': run->seconds = atof(arg); return 1;
    case 'W': run->warmup = atof(arg); return 1;
    default: return 0;
  }
}

// True when run has a port, a measured time and no negative warm-up.
static inline int bench_run_ok(const struct bench_run *run) {
  return run->port > 0 && run->seconds > 0 && run->warmup >= 0;
}

// Seconds on the monotonic clock.
static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Exits with status 1 after "BENCH_NAME: what" on stderr.
static inline void bench_fail(const char *what) {
  fprintf(stderr, "%s: %s\n", BENCH_NAME, what);
  exit(1);
}

// Exits with status 1 after "BENCH_NAME: what: <errno's text>" on stderr:
// for a system call that failed.
static inline void bench_die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", BENCH_NAME, what, errno ? strerror(errno) : "failed");
  exit(1);
}

// The address 127.0.0.1:port.
static inline struct sockaddr_in bench_loopback(int port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sin;
}

// A socket of type (SOCK_STREAM or SOCK_DGRAM) connected to 127.0.0.1:port;
// exits on failure.
static inline int bench_connect(int type, int port) {
  struct sockaddr_in sin = bench_loopback(port);
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) bench_die("socket");
  if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) bench_die("connect");
  return fd;
}

// epoll_ctl(ep, op, fd) for events, with ptr as the event's data; exits on
// failure.
static inline void bench_epoll(int ep, int op, int fd, uint32_t events, void *ptr) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.ptr = ptr;
  if (epoll_ctl(ep, op, fd, &ev) != 0) bench_die("epoll_ctl");
}

#endif  // BENCH_UTIL_H
