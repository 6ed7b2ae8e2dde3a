// Opening the files the static server sends, and keeping them open for a
// while (like nginx's open_file_cache): an entry holds the descriptor and
// what fstat said (size, times, validators), is trusted for valid_ms and
// then opened and checked again, and goes after inactive_ms unused or when
// the cache is full (least recently used first). Failed lookups (no such
// file) are kept too, so that probing for a missing variant (file.br) or a
// missing file costs no system call either. A descriptor is closed once
// neither the cache nor a reply being sent holds it (shared_ptr).
//
// Containment: a file's real path (where its descriptor points, from
// /proc/self/fd) is checked against the real path of the root, so a
// symbolic link cannot lead out of the root, unless allowed.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "noncopyable.hpp"

namespace mgffi {

struct OpenFile : NonCopyable {
  int fd = -1;  // regular files; -1 for a directory
  bool is_dir = false;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // seconds since the epoch
  long mtime_ns = 0;
  std::uint64_t dev = 0, ino = 0;
  std::string real;  // real path (empty when not looked up)
  char etag[48] = {};
  std::size_t etag_len = 0;
  char last_modified[30] = {};  // IMF-fixdate

  OpenFile() = default;
  ~OpenFile();
  std::string_view etag_view() const { return {etag, etag_len}; }
};

enum class Symlinks : std::uint8_t {
  kInside,  // followed while the target stays under the root (default)
  kAny,     // followed anywhere
  kNone,    // a path through any symbolic link is refused
};

// Where a file must be to be served: under root_real (the root's real
// path), and with kNone exactly at root_real + "/" + rel.
struct FileScope {
  std::string_view root_real;  // unused with kAny
  std::string_view rel;        // the normalised path under the root
  Symlinks symlinks = Symlinks::kAny;
};

struct FileLookup {
  std::shared_ptr<OpenFile> file;  // null when not served
  int error = 0;                   // errno when file is null (a refused link: ENOENT)
};

// Opens path (a regular file or a directory; anything else is ENOENT) and
// checks it against scope. No cache.
FileLookup open_checked(const std::string &path, const FileScope &scope);

class FileCache {
 public:
  struct Config {
    std::size_t max_entries = 256;  // 0: no cache
    std::uint64_t valid_ms = 1000;
    std::uint64_t inactive_ms = 10000;
  };

  void configure(const Config &config, std::uint64_t now_ms);
  const Config &config() const { return config_; }
  // The result for path under scope. key names path and scope (the caller
  // builds it); now_ms: a monotonic clock. Failures other than ENOENT and
  // ENOTDIR (EACCES, EMFILE) are not cached.
  FileLookup lookup(const std::string &key, const std::string &path, const FileScope &scope,
                    std::uint64_t now_ms);
  // Drops the entries unused for inactive_ms.
  void sweep(std::uint64_t now_ms);
  std::size_t size() const { return map_.size(); }
  void clear();

 private:
  struct Use {
    const std::string *key;  // the map's key
    std::uint64_t used_ms;
  };
  struct Entry {
    FileLookup result;
    std::uint64_t checked_ms = 0;
    std::list<Use>::iterator lru;  // into lru_
  };
  void erase(std::unordered_map<std::string, Entry>::iterator it);
  void erase_oldest() { erase(map_.find(*lru_.back().key)); }

  Config config_;
  std::unordered_map<std::string, Entry> map_;
  std::list<Use> lru_;  // most recently used first
};

}  // namespace mgffi
