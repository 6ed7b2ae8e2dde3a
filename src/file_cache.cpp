#include "file_cache.hpp"

#include <limits.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "http_conditional.hpp"
#include "platform.hpp"

namespace mgffi {

namespace {

// Where fd points: /proc/self/fd's link, or realpath(path) without /proc
// (and on Windows).
bool real_path_of(int fd, const std::string &path, std::string *out) {
#if !defined(_WIN32)
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char buf[PATH_MAX + 1];
  const ssize_t n = readlink(link, buf, PATH_MAX);
  if (n > 0) {
    out->assign(buf, static_cast<std::size_t>(n));
    return true;
  }
#else
  (void)fd;
#endif
  char *resolved = real_path(path.c_str());
  if (resolved == nullptr) return false;
  out->assign(resolved);
  std::free(resolved);
  return true;
}

bool inside(std::string_view real, std::string_view root) {
  if (root == "/") return !real.empty() && real.front() == '/';
  return real.size() >= root.size() && real.compare(0, root.size(), root) == 0 &&
         (real.size() == root.size() || real[root.size()] == '/');
}

bool exactly_at(std::string_view real, std::string_view root, std::string_view rel) {
  if (rel.empty()) return real == root;
  const std::size_t base = root == "/" ? 0 : root.size();
  return real.size() == base + 1 + rel.size() && real.compare(0, base, root.substr(0, base)) == 0 &&
         real[base] == '/' && real.compare(base + 1, rel.size(), rel) == 0;
}

bool same_file(const OpenFile &a, const OpenFile &b) {
  return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime == b.mtime &&
         a.mtime_ns == b.mtime_ns && a.is_dir == b.is_dir && a.real == b.real;
}

}  // namespace

OpenFile::~OpenFile() {
  if (fd >= 0) ::close(fd);
}

FileLookup open_checked(const std::string &path, const FileScope &scope) {
  FileLookup out;
#if defined(_WIN32)
  // Windows cannot open() a directory: stat tells one first, and it gets
  // no descriptor (none is kept for a directory anyway).
  struct stat dir_sb;
  std::string stat_path = path;
  while (stat_path.size() > 1 && stat_path.back() == '/') stat_path.pop_back();
  const bool is_dir = stat(stat_path.c_str(), &dir_sb) == 0 && S_ISDIR(dir_sb.st_mode);
  const int fd = is_dir ? -1 : ::open(path.c_str(), kOpenReadFlags);
  if (fd < 0 && !is_dir) {
#else
  const int fd = ::open(path.c_str(), kOpenReadFlags);
  if (fd < 0) {
#endif
    out.error = errno;
    return out;
  }
  std::shared_ptr<OpenFile> f;
  try {
    f = std::make_shared<OpenFile>();
  } catch (const std::bad_alloc &) {
    if (fd >= 0) ::close(fd);
    out.error = ENOMEM;
    return out;
  }
  f->fd = fd;  // closed by f from here
  struct stat sb;
#if defined(_WIN32)
  if (is_dir) {
    sb = dir_sb;
  } else if (fstat(fd, &sb) != 0) {
#else
  if (fstat(fd, &sb) != 0) {
#endif
    out.error = errno;
    return out;
  }
  if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
    out.error = ENOENT;  // devices, FIFOs and sockets are not served
    return out;
  }
  if (scope.symlinks != Symlinks::kAny) {
    if (!real_path_of(fd, path, &f->real)) {
      out.error = errno != 0 ? errno : ENOENT;
      return out;
    }
    const bool ok = scope.symlinks == Symlinks::kInside
                        ? inside(f->real, scope.root_real)
                        : exactly_at(f->real, scope.root_real, scope.rel);
    if (!ok) {
      out.error = ENOENT;  // refused: as if it did not exist
      return out;
    }
  }
  f->is_dir = S_ISDIR(sb.st_mode);
  f->size = f->is_dir ? 0 : static_cast<std::uint64_t>(sb.st_size);
  f->mtime = mtime_sec(sb);
  f->mtime_ns = mtime_nsec(sb);
  f->dev = static_cast<std::uint64_t>(sb.st_dev);
  f->ino = static_cast<std::uint64_t>(sb.st_ino);
  if (f->is_dir) {
    if (f->fd >= 0) ::close(f->fd);
    f->fd = -1;
  } else {
    const std::uint64_t stamp = static_cast<std::uint64_t>(f->mtime) * 1000000000ull +
                                static_cast<std::uint64_t>(f->mtime_ns);
    const int n =
        std::snprintf(f->etag, sizeof(f->etag), "\"%" PRIx64 "-%" PRIx64 "\"", f->size, stamp);
    f->etag_len = n > 0 ? static_cast<std::size_t>(n) : 0;
    format_http_date(f->mtime, f->last_modified);
  }
  out.file = std::move(f);
  return out;
}

void FileCache::configure(const Config &config, std::uint64_t now_ms) {
  config_ = config;
  while (map_.size() > config_.max_entries) erase_oldest();
  sweep(now_ms);
}

void FileCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  map_.erase(it);
}

void FileCache::clear() {
  lru_.clear();
  map_.clear();
}

FileLookup FileCache::lookup(const std::string &key, const std::string &path,
                             const FileScope &scope, std::uint64_t now_ms) {
  auto it = map_.find(key);
  if (it != map_.end() && now_ms - it->second.checked_ms < config_.valid_ms) {
    Entry &e = it->second;
    e.lru->used_ms = now_ms;
    lru_.splice(lru_.begin(), lru_, e.lru);
    return e.result;
  }
  FileLookup fresh = open_checked(path, scope);
  const bool cacheable = fresh.file != nullptr || fresh.error == ENOENT || fresh.error == ENOTDIR;
  if (config_.max_entries == 0 || !cacheable) {
    if (it != map_.end()) erase(it);
    return fresh;
  }
  if (it == map_.end()) {
    while (map_.size() >= config_.max_entries) erase_oldest();
    try {
      lru_.push_front(Use{nullptr, now_ms});
    } catch (const std::bad_alloc &) {
      return fresh;  // served, not cached
    }
    try {
      it = map_.emplace(key, Entry()).first;
    } catch (const std::bad_alloc &) {
      lru_.pop_front();
      return fresh;
    }
    lru_.front().key = &it->first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    // Unchanged: keep the descriptor already open (a reply may use it).
    const FileLookup &old = it->second.result;
    if (old.file && fresh.file && same_file(*old.file, *fresh.file)) fresh = old;
  }
  Entry &e = it->second;
  e.result = fresh;
  e.checked_ms = now_ms;
  e.lru->used_ms = now_ms;
  return fresh;
}

void FileCache::sweep(std::uint64_t now_ms) {
  while (!lru_.empty() && now_ms >= lru_.back().used_ms &&
         now_ms - lru_.back().used_ms >= config_.inactive_ms) {
    erase_oldest();
  }
}

}  // namespace mgffi
