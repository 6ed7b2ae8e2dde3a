// The static file server's state, one per manager (created on first use):
// the open-file cache, the real paths of roots, buffers reused from reply
// to reply, and an epoll set of its own that reports when a socket a file
// is sent to with sendfile(2) has room again. Mongoose watches a socket
// for writing only while its send buffer holds bytes, and a file sent
// straight from the page cache never passes through that buffer; so the
// glue asks for one EPOLLOUT report (one-shot) each time the kernel's
// buffer fills, in this set, which is itself registered in Mongoose's
// epoll set through a sentinel connection (as park.hpp does): a poll wakes
// when such a socket has room, and a slow reader costs nothing meanwhile.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "file_cache.hpp"
#include "mongoose.h"
#include "nested_epoll.hpp"
#include "noncopyable.hpp"

namespace mgffi {

class StaticFiles : NonCopyable {
 public:
  StaticFiles() = default;

  // Creates the epoll set inside mgr's. False without epoll (files are
  // then read into the send buffer, as for TLS).
  bool init(mg_mgr *mgr);
  bool can_watch() const { return epoll_.enabled(); }
  // One report (EPOLLOUT, one-shot) when socket fd of connection id has
  // room. *registered: fd is in the set already (re-armed), set on success.
  bool watch(int fd, std::uint64_t id, bool *registered);
  void unwatch(int fd);
  // The sentinel fired in the last mg_mgr_poll (and is reset).
  bool io_ready() { return epoll_.fired(); }
  // Up to max connection ids whose sockets reported (events in *events).
  int ready(std::uint64_t *ids, std::uint32_t *events, int max) {
    return epoll_.ready(ids, events, max);
  }

  // The real path of root, checked again after the cache's valid_ms;
  // nullptr with *err set when it has none (missing).
  const std::string *real_root(std::string_view root, std::uint64_t now_ms, int *err);
  // "Date: <IMF-fixdate>\r\n" of the current second (RFC 9110 6.6.1).
  std::string_view date_header();

  FileCache cache;
  // Buffers reused from reply to reply: the head being built, a body or
  // extra lines, the cache key, the decoded request path, the path under
  // the root and on disk of the file, of an index file, of a variant.
  std::string head, body, key, decoded, name;
  std::string rel, path, index_rel, index_path, alt_rel, alt_path;

 private:
  struct Root {
    std::string real;
    int err = 0;
    std::uint64_t checked_ms = 0;
  };
  NestedEpoll epoll_;  // sockets waiting for room, one-shot
  mg_mgr *mgr_ = nullptr;
  std::unordered_map<std::string, Root> roots_;
  std::string root_key_;
  std::int64_t date_second_ = -1;
  char date_[48] = {};
  std::size_t date_len_ = 0;
};

}  // namespace mgffi
