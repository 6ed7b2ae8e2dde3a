// The body of a static reply (http_static.cpp chose the file and sent the
// head). Three ways, by size and transport:
//   - small bodies (up to kInlineBytes) are read into the send buffer with
//     the head: one write;
//   - plain HTTP: the head is written at once, then the file goes from the
//     page cache to the socket with sendfile(2) as far as the kernel takes
//     it; when the socket is full, StaticFiles' epoll set reports (once)
//     when it has room again. A slow reader costs nothing meanwhile, and
//     one that takes nothing for send_timeout_ms is closed (check_timeouts
//     counts a pending file as queued output);
//   - TLS (and builds without epoll): the file is read into the send
//     buffer kRefillChunk at a time whenever it falls below kRefillLow, and
//     Mongoose encrypts and sends it as usual.
// The descriptor stays open while the body is being sent (and while the
// open-file cache keeps it); the reply is finished when the last byte has
// been handed over.
#include <cerrno>

#include "file_cache.hpp"
#include "http_static.hpp"
#include "manager.hpp"
#include "platform.hpp"

namespace mgffi {

namespace {

constexpr std::uint64_t kInlineBytes = 16384;    // bodies sent with the head
constexpr std::size_t kRefillLow = 65536;        // TLS: refill below this much queued
constexpr std::size_t kRefillChunk = 65536;      // TLS: bytes read per refill
constexpr std::size_t kSendfileMax = 1u << 30;   // one sendfile call at most
constexpr std::uint64_t kPumpBudget = 8u << 20;  // then other connections get a turn

#if !MG_ENABLE_EPOLL
// Never called without epoll (files go through the send buffer there).
ssize_t sendfile(int, int, off_t *, std::size_t) {
  errno = ENOSYS;
  return -1;
}
#endif

// Reads n bytes of f at offset into the end of c's send buffer.
bool read_into_send(mg_connection *c, ConnState *st, const OpenFile &f, std::uint64_t offset,
                    std::size_t n, std::uint64_t now) {
  if (c->send.size - c->send.len < n) {
    const std::size_t want = (c->send.len + n + MG_IO_SIZE - 1) / MG_IO_SIZE * MG_IO_SIZE;
    if (!mg_iobuf_resize(&c->send, want)) return false;
  }
  if (c->send.len == 0) st->last_write_ms = now;  // the send timeout counts from here
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = pread_at(f.fd, c->send.buf + c->send.len + got, n - got, offset + got);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      return false;  // shorter than its size said (truncated meanwhile), or an I/O error
    }
  }
  c->send.len += n;
  return true;
}

}  // namespace

void Manager::file_start(mg_connection *c, ConnState *st, std::shared_ptr<OpenFile> file,
                         std::uint64_t first, std::uint64_t end) {
  HttpRequest &r = st->http;
  const std::uint64_t len = end - first;
  if (len <= kInlineBytes) {
    const bool ok = read_into_send(c, st, *file, first, static_cast<std::size_t>(len), poll_now_);
    finish_reply(c, st);
    if (!ok) {
      c->is_closing = 1;  // the head promised bytes the file no longer has
      return;
    }
    flush_now(c, st, false);
    return;
  }
  r.file.file = std::move(file);
  r.file.offset = first;
  r.file.end = end;
  r.file.watched = false;
  r.out = HttpRequest::Out::kServing;
  file_pump(c, st);
}

void Manager::file_pump(mg_connection *c, ConnState *st) {
  FileSend &f = st->http.file;
  if (!f.active() || st->http.out != HttpRequest::Out::kServing) return;
  if (c->is_closing) {
    file_end(c, st, false);
    return;
  }
  if (c->is_tls || !files_->can_watch()) {
    refill_send(c, st);
    return;
  }
  // The head first: Mongoose sends what is left of it, then MG_EV_WRITE
  // brings the connection back here.
  if (c->send.len > 0 && !flush_now(c, st, true)) {
    if (c->is_closing) file_end(c, st, false);
    return;
  }
  const int sock = fd_of(c);  // only with epoll (Linux)
  std::uint64_t sent = 0;
  while (f.offset < f.end) {
    const std::uint64_t left = f.end - f.offset;
    off_t off = static_cast<off_t>(f.offset);
    const ssize_t n = sendfile(sock, f.file->fd, &off, left > kSendfileMax ? kSendfileMax : left);
    if (n > 0) {
      f.offset += static_cast<std::uint64_t>(n);
      sent += static_cast<std::uint64_t>(n);
      st->last_write_ms = poll_now_;  // the peer took bytes: not stuck
      if (sent < kPumpBudget || f.offset == f.end) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      // 0: the file is shorter than the head said (truncated meanwhile);
      // else the peer is gone (EPIPE, ECONNRESET).
      c->is_closing = 1;
      file_end(c, st, false);
      return;
    }
    // Full (or this poll's share sent): one report when there is room.
    if (!files_->watch(sock, st->id, &f.watched)) {
      c->is_closing = 1;
      file_end(c, st, false);
    }
    return;
  }
  file_end(c, st, true);
}

// TLS: keeps the send buffer topped up from the file.
void Manager::refill_send(mg_connection *c, ConnState *st) {
  FileSend &f = st->http.file;
  while (c->send.len < kRefillLow && f.offset < f.end) {
    const std::uint64_t left = f.end - f.offset;
    const std::size_t n = left > kRefillChunk ? kRefillChunk : static_cast<std::size_t>(left);
    if (!read_into_send(c, st, *f.file, f.offset, n, poll_now_)) {
      c->is_closing = 1;
      file_end(c, st, false);
      return;
    }
    f.offset += n;
  }
  if (f.offset >= f.end) file_end(c, st, true);
}

// Every poll: a TLS body whose send buffer ran low (MG_EV_WRITE refills
// it too; this is for a write that emptied it without one).
void Manager::file_on_poll(mg_connection *c, ConnState *st) {
  if (!st->http.file.active() || st->http.out != HttpRequest::Out::kServing) return;
  if (c->is_closing) {
    file_end(c, st, false);
  } else if ((c->is_tls || !files_->can_watch()) && c->send.len < kRefillLow) {
    refill_send(c, st);
  }
}

// The body is all handed over (complete), or will never be: the file goes
// (its descriptor closes unless the cache keeps it).
void Manager::file_end(mg_connection *c, ConnState *st, bool complete) {
  FileSend &f = st->http.file;
  if (f.watched && files_ && c->fd != nullptr) files_->unwatch(fd_of(c));
  f = FileSend();
  HttpRequest &r = st->http;
  if (r.out != HttpRequest::Out::kServing) return;
  if (complete) {
    finish_reply(c, st);
  } else {
    r.out = HttpRequest::Out::kDone;
  }
}

// After mg_mgr_poll: the sockets StaticFiles reported to have room, and
// the open-file cache's inactive entries.
void Manager::file_poll() {
  if (!files_) return;
  files_->cache.sweep(poll_now_);
  if (!files_->io_ready()) return;
  std::uint64_t ids[64];
  std::uint32_t events[64];
  const int n = files_->ready(ids, events, 64);  // more: reported at the next poll
  for (int i = 0; i < n; i++) {
    auto it = conns_.find(ids[i]);
    if (it == conns_.end()) continue;
    mg_connection *c = it->second.first;
    ConnState *st = it->second.second.get();
    if ((events[i] & (EPOLLERR | EPOLLHUP)) != 0) {
      c->is_closing = 1;  // the peer is gone: the rest cannot be delivered
      file_end(c, st, false);
    } else {
      file_pump(c, st);
    }
  }
}

}  // namespace mgffi
