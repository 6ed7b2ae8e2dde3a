// The static file server: Manager::http_serve answers the pending request
// from a directory (serve_dir) or one file (serve_file). The request path
// is decoded and normalised before it touches the file system, dotfiles
// and links out of the root are refused (404) unless allowed, a directory
// gets its index file, a listing or a redirect; then RFC 9110's
// preconditions and ranges (http_conditional.hpp) decide between 200, 206,
// 304, 412 and 416, and a compressed variant (file.br, file.gz) is chosen
// by Accept-Encoding. This file writes the head; the body goes out in
// file_send.cpp.
#include "http_static.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>

#include "ascii.hpp"
#include "dir_listing.hpp"
#include "http_conditional.hpp"
#include "manager.hpp"
#include "mime.hpp"
#include "platform.hpp"
#include "static_path.hpp"
#include "status_text.hpp"

namespace mgffi {

// ---- StaticFiles ---------------------------------------------------------------

bool StaticFiles::init(mg_mgr *mgr) {
  mgr_ = mgr;
  return epoll_.init(mgr);
}

bool StaticFiles::watch(int fd, std::uint64_t id, bool *registered) {
  // An id, not a pointer: a report may outlive its connection.
  if (!epoll_.watch(fd, EPOLLOUT | EPOLLONESHOT, id, *registered)) return false;
  *registered = true;
  return true;
}

void StaticFiles::unwatch(int fd) {
  epoll_.unwatch(fd);
}

const std::string *StaticFiles::real_root(std::string_view root, std::uint64_t now_ms, int *err) {
  root_key_.assign(root.data(), root.size());
  auto it = roots_.find(root_key_);
  if (it == roots_.end() || now_ms - it->second.checked_ms >= cache.config().valid_ms) {
    if (it == roots_.end()) {
      if (roots_.size() >= 64) roots_.clear();
      it = roots_.emplace(root_key_, Root()).first;
    }
    Root &r = it->second;
    if (char *resolved = real_path(root_key_.c_str())) {
      r.real.assign(resolved);
      std::free(resolved);
      r.err = 0;
    } else {
      r.real.clear();
      r.err = errno;
    }
    r.checked_ms = now_ms;
  }
  if (it->second.err != 0) {
    *err = it->second.err;
    return nullptr;
  }
  return &it->second.real;
}

std::string_view StaticFiles::date_header() {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (now != date_second_) {
    char date[30];
    format_http_date(now, date);
    const int n = std::snprintf(date_, sizeof(date_), "Date: %s\r\n", date);
    date_len_ = n > 0 ? static_cast<std::size_t>(n) : 0;
    date_second_ = now;
  }
  return {date_, date_len_};
}

// ---- resolving a request to a file -----------------------------------------------

namespace {

constexpr int kListing = 1;  // find_in_dir: answer with a listing

std::string_view view(const mgffi_str &s) {
  return s.len > 0 ? std::string_view(s.ptr, s.len) : std::string_view();
}

std::string_view view(const mg_str &s) {
  return s.len > 0 ? std::string_view(s.buf, s.len) : std::string_view();
}

// Whether a "Name: value\r\n" block has a line for name.
bool has_header(std::string_view block, std::string_view name) {
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t end = block.find('\n', pos);
    if (end == std::string_view::npos) end = block.size();
    const std::string_view line = block.substr(pos, end - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        iequals(line.substr(0, name.size()), name)) {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

struct ServeRequest {
  Preconditions pre;
  HeaderValues accept_encoding;
  bool get = false;
  bool head = false;
};

// The header lines the reply depends on, in one pass over the request.
void read_request(const mg_http_message &hm, ServeRequest *q) {
  const std::string_view method = view(hm.method);
  q->get = method == "GET";
  q->head = method == "HEAD";
  for (const mg_http_header &h : hm.headers) {
    if (h.name.len == 0) break;
    const std::string_view name = view(h.name), value = view(h.value);
    switch (name.size()) {
      case 5:
        if (iequals(name, "Range")) q->pre.range.add(value);
        break;
      case 8:
        if (iequals(name, "If-Match")) {
          q->pre.if_match.add(value);
        } else if (iequals(name, "If-Range")) {
          q->pre.if_range.add(value);
        }
        break;
      case 13:
        if (iequals(name, "If-None-Match")) q->pre.if_none_match.add(value);
        break;
      case 15:
        if (iequals(name, "Accept-Encoding")) q->accept_encoding.add(value);
        break;
      case 17:
        if (iequals(name, "If-Modified-Since")) q->pre.if_modified_since.add(value);
        break;
      case 19:
        if (iequals(name, "If-Unmodified-Since")) q->pre.if_unmodified_since.add(value);
        break;
      default: break;
    }
  }
}

// root + "/" + rel into *out.
void join(std::string_view root, std::string_view rel, std::string *out) {
  out->assign(root.data(), root.size());
  if (!rel.empty()) {
    if (out->empty() || out->back() != '/') out->push_back('/');
    out->append(rel.data(), rel.size());
  }
}

// What a lookup needs besides the path: the cache, the scope, the clock.
struct Finder {
  StaticFiles &sf;
  std::string_view root_real;
  Symlinks symlinks;
  bool dotfiles;
  std::uint64_t now;

  FileLookup find(const std::string &path, std::string_view rel) const {
    sf.key.clear();
    sf.key.push_back(static_cast<char>('0' + static_cast<int>(symlinks)));
    sf.key.append(root_real.data(), root_real.size());
    sf.key.push_back('\0');
    sf.key.append(path);
    FileLookup lk = sf.cache.lookup(sf.key, path, FileScope{root_real, rel, symlinks}, now);
    // A link inside the root may still lead to a dotfile.
    if (lk.file && !dotfiles && !lk.file->real.empty() && lk.file->real.size() > root_real.size()) {
      const std::size_t skip = root_real == "/" ? 1 : root_real.size() + 1;
      if (has_dot_segment(std::string_view(lk.file->real).substr(skip)))
        return FileLookup{{}, ENOENT};
    }
    return lk;
  }
};

// The status a failed lookup turns into.
int status_of_error(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP: return 404;
    case EACCES:
    case EPERM: return 403;
    case EMFILE:
    case ENFILE:
    case ENOMEM: return 503;
    default: return 500;
  }
}

struct Found {
  std::shared_ptr<OpenFile> file;
  std::string_view name;     // "/" + path under root (serve_file: its path): MIME type, rules
  std::string_view fs_path;  // where it is, to look for variants next to it
  std::string_view rel;      // path under root (for the variants' scope)
};

// serve_dir: the file for the request, or the status to answer (301,
// kListing, 400, 403, 404, 500, 503).
int find_in_dir(const Finder &finder, std::string_view root, const mgffi_serve_opts &o,
                std::string_view decoded, Found *f) {
  StaticFiles &sf = finder.sf;
  bool dir_slash = false;
  if (normalize_path(decoded, &sf.rel, &dir_slash) != PathCheck::kOk) return 400;
  if (!finder.dotfiles && has_dot_segment(sf.rel)) return 404;
  join(root, sf.rel, &sf.path);
  const FileLookup lk = finder.find(sf.path, sf.rel);
  if (lk.file && !lk.file->is_dir) {
    if (dir_slash && !sf.rel.empty()) return 404;  // "file.txt/"
    sf.name.assign("/").append(sf.rel);
    *f = Found{lk.file, sf.name, sf.path, sf.rel};
    return 200;
  }
  if (lk.file) {  // a directory: to its path with a '/', then its first index file
    if (!dir_slash) return 301;
    std::shared_ptr<OpenFile> index;
    each_list_item(view(o.index), [&](std::string_view name) {
      sf.index_rel.assign(sf.rel);
      if (!sf.index_rel.empty()) sf.index_rel.push_back('/');
      sf.index_rel.append(name.data(), name.size());
      join(root, sf.index_rel, &sf.index_path);
      const FileLookup ix = finder.find(sf.index_path, sf.index_rel);
      if (ix.file && !ix.file->is_dir) index = ix.file;
      return index != nullptr;
    });
    if (index) {
      sf.name.assign("/").append(sf.index_rel);
      *f = Found{index, sf.name, sf.index_path, sf.index_rel};
      return 200;
    }
    return (o.flags & MGFFI_SERVE_LISTING) != 0 ? kListing : 404;
  }
  const int status = status_of_error(lk.error);
  const std::string_view fallback = view(o.spa_fallback);
  if (status != 404 || fallback.empty() || last_segment_has_dot(sf.rel)) return status;
  // A single-page app: unknown paths without an extension get its page.
  sf.index_rel.assign(fallback.data(), fallback.size());
  join(root, sf.index_rel, &sf.index_path);
  const FileLookup fb = finder.find(sf.index_path, sf.index_rel);
  if (!fb.file || fb.file->is_dir) return 404;
  sf.name.assign("/").append(sf.index_rel);
  *f = Found{fb.file, sf.name, sf.index_path, sf.index_rel};
  return 200;
}

// serve_file: the file itself, or the status to answer.
int find_file(const Finder &finder, std::string_view path, Found *f) {
  StaticFiles &sf = finder.sf;
  sf.path.assign(path.data(), path.size());
  const FileLookup lk = finder.find(sf.path, {});
  if (!lk.file) return status_of_error(lk.error);
  if (lk.file->is_dir) return 404;
  *f = Found{lk.file, sf.path, sf.path, {}};
  return 200;
}

// The suffix of a content coding's variant file, or nullptr.
const char *variant_suffix(std::string_view coding) {
  if (coding == "br") return ".br";
  if (coding == "gzip") return ".gz";
  if (coding == "zstd") return ".zst";
  return nullptr;
}

// The representation a reply sends: the file, or the compressed variant
// Accept-Encoding prefers (*coding set). *vary: a variant exists, so the
// choice depends on Accept-Encoding.
std::shared_ptr<OpenFile> choose_variant(const Finder &finder, const mgffi_serve_opts &o,
                                         const ServeRequest &q, const Found &f,
                                         std::string_view *coding, bool *vary) {
  constexpr int kMaxVariants = 4;
  StaticFiles &sf = finder.sf;
  std::shared_ptr<OpenFile> files[kMaxVariants];
  std::string_view codings[kMaxVariants];
  int count = 0;
  each_list_item(view(o.precompressed), [&](std::string_view name) {
    const char *suffix = variant_suffix(name);
    if (suffix == nullptr) return false;
    sf.alt_path.assign(f.fs_path.data(), f.fs_path.size()).append(suffix);
    sf.alt_rel.assign(f.rel.data(), f.rel.size()).append(suffix);
    const FileLookup v = finder.find(sf.alt_path, sf.alt_rel);
    if (v.file && !v.file->is_dir) {
      files[count] = v.file;
      codings[count] = name;
      count++;
    }
    return count == kMaxVariants;
  });
  *vary = count > 0;
  const int k = count > 0 ? choose_coding(q.accept_encoding, codings, count) : -1;
  if (k < 0) return f.file;
  *coding = codings[k];
  return files[k];
}

void add_line(std::string *h, std::string_view name, std::string_view value) {
  h->append(name.data(), name.size()).append(": ").append(value.data(), value.size());
  h->append("\r\n");
}

void add_number(std::string *h, std::string_view name, std::uint64_t n) {
  char digits[24];
  const int len = std::snprintf(digits, sizeof(digits), "%" PRIu64, n);
  add_line(h, name, std::string_view(digits, len > 0 ? static_cast<std::size_t>(len) : 0));
}

}  // namespace

// ---- replies -------------------------------------------------------------------

StaticFiles *Manager::static_files() {
  if (!files_) {
    files_.reset(new (std::nothrow) StaticFiles());
    if (files_) files_->init(&mgr_);
  }
  return files_.get();
}

int Manager::set_file_cache(std::uint32_t max_entries, std::uint32_t valid_ms,
                            std::uint32_t inactive_ms) {
  StaticFiles *sf = static_files();
  if (sf == nullptr) return fail(MGFFI_ERR_NOMEM, "out of memory");
  FileCache::Config config;
  config.max_entries = max_entries;
  config.valid_ms = valid_ms;
  config.inactive_ms = inactive_ms;
  sf->cache.configure(config, mg_millis());
  return MGFFI_OK;
}

// The head of a static reply: the status line, the glue's own lines (in
// sf.head), the caller's, Date and the Connection header.
void Manager::static_head(mg_connection *c, ConnState *st, int status, std::string_view user) {
  StaticFiles &sf = *files_;
  sf.head.append(user.data(), user.size());
  const std::string_view date = sf.date_header();
  sf.head.append(date.data(), date.size());
  send_status_and_headers(c, st, status, sf.head.data(), sf.head.size());
  send_bytes(c, "\r\n", 2);
}

// A whole reply built here (an error's short text, a listing, a
// redirect): sf.head holds the glue's lines before Content-Length.
int Manager::static_text(mg_connection *c, ConnState *st, int status, std::string_view body,
                         std::string_view user, std::uint64_t *body_len) {
  StaticFiles &sf = *files_;
  add_number(&sf.head, "Content-Length", body.size());
  static_head(c, st, status, user);
  const bool head = st->http.head;
  if (!head) send_bytes(c, body.data(), body.size());
  if (body_len != nullptr) *body_len = head ? 0 : body.size();
  finish_reply(c, st);
  flush_now(c, st, false);
  return status;
}

// An error with a short text body ("404 Not Found\n"); extra: more
// header lines (Allow, Content-Range) or empty.
int Manager::static_error(mg_connection *c, ConnState *st, int status, std::string_view user,
                          std::string_view extra, std::uint64_t *body_len) {
  StaticFiles &sf = *files_;
  char body[64];
  const int n = std::snprintf(body, sizeof(body), "%d %s\n", status, status_text(status));
  sf.head.assign("Content-Type: text/plain; charset=utf-8\r\n");
  sf.head.append(extra.data(), extra.size());
  return static_text(c, st, status, std::string_view(body, n > 0 ? static_cast<std::size_t>(n) : 0),
                     user, body_len);
}

int Manager::http_serve(mg_connection *c, std::string_view target, bool is_dir,
                        const mgffi_serve_opts &o, std::uint64_t *body_len) {
  ConnState *st = state_of(c);
  HttpRequest &r = st->http;
  if (body_len != nullptr) *body_len = 0;
  if (r.out != HttpRequest::Out::kPending || r.in != HttpRequest::In::kComplete) {
    return fail(MGFFI_ERR_STATE, "no request is waiting for a reply on this connection");
  }
  StaticFiles *sfp = static_files();
  if (sfp == nullptr) return fail(MGFFI_ERR_NOMEM, "out of memory");
  StaticFiles &sf = *sfp;
  const std::uint64_t now = mg_millis();
  sf.cache.sweep(now);
  const mg_http_message &hm = r.store->mongoose_view();
  ServeRequest q;
  read_request(hm, &q);
  const std::string_view user = view(o.headers);
  if (!q.get && !q.head) return static_error(c, st, 405, user, "Allow: GET, HEAD\r\n", body_len);

  // Resolve: the request path under root, or the file.
  Found f;
  int found = 0;
  Finder finder{sf, {}, Symlinks::kAny, true, now};
  if (is_dir) {
    std::string_view decoded = view(o.path);
    if (decoded.empty()) {
      if (!url_decode_path(view(hm.uri), &sf.decoded)) found = 400;
      decoded = sf.decoded;
    }
    int err = 0;
    const std::string *real = found == 0 ? sf.real_root(target, now, &err) : nullptr;
    if (found == 0 && real == nullptr) found = 404;
    if (found == 0) {
      finder.root_real = *real;
      finder.symlinks = (o.flags & MGFFI_SERVE_SYMLINKS_ANY)    ? Symlinks::kAny
                        : (o.flags & MGFFI_SERVE_SYMLINKS_NONE) ? Symlinks::kNone
                                                                : Symlinks::kInside;
      finder.dotfiles = (o.flags & MGFFI_SERVE_DOTFILES) != 0;
      found = find_in_dir(finder, target, o, decoded, &f);
    }
  } else {
    found = find_file(finder, target, &f);
  }
  if (found == 404 && (o.flags & MGFFI_SERVE_FALLTHROUGH) != 0) return 0;
  if (found == 301) {
    // To the directory: the request's own path with a '/', and its query;
    // one leading '/' only ("//host/" would be another site's URL).
    std::string_view uri = view(hm.uri);
    while (!uri.empty() && (uri.front() == '/' || uri.front() == '\\')) uri.remove_prefix(1);
    sf.head.assign("Location: /").append(uri).append("/");
    if (hm.query.len > 0) sf.head.append("?").append(view(hm.query));
    sf.head.append("\r\n");
    return static_text(c, st, 301, {}, user, body_len);
  }
  if (found == kListing) {
    const bool at_root = sf.rel.empty();
    sf.name.assign("/").append(sf.rel);
    if (!at_root) sf.name.push_back('/');
    if (!build_listing(sf.path, sf.name, finder.dotfiles, at_root, &sf.body)) {
      return static_error(c, st, status_of_error(errno), user, {}, body_len);
    }
    sf.head.assign("Content-Type: text/html; charset=utf-8\r\n");
    return static_text(c, st, 200, sf.body, user, body_len);
  }
  if (found != 200) return static_error(c, st, found, user, {}, body_len);

  // Choose the representation, then evaluate the request's conditions.
  std::string_view coding;
  bool vary = false;
  std::shared_ptr<OpenFile> file =
      o.precompressed.len > 0 ? choose_variant(finder, o, q, f, &coding, &vary) : f.file;
  // A variant's tag names its coding: two variants may share a size and a
  // modification time.
  char tag[80];
  std::string_view etag = file->etag_view();
  if (!coding.empty() && etag.size() >= 2) {
    const int n = std::snprintf(tag, sizeof(tag), "%.*s-%.*s\"", static_cast<int>(etag.size() - 1),
                                etag.data(), static_cast<int>(coding.size()), coding.data());
    if (n > 0 && static_cast<std::size_t>(n) < sizeof(tag)) etag = std::string_view(tag, n);
  }
  Representation rep;
  rep.etag = etag;
  rep.mtime = file->mtime;
  rep.mtime_strong = file->mtime + 1 < static_cast<std::int64_t>(std::time(nullptr));
  rep.size = file->size;
  const Outcome out = evaluate_preconditions(q.pre, rep, q.get);
  std::string &h = sf.head;
  h.clear();
  if (out.status == 412) return static_error(c, st, 412, user, {}, body_len);
  if (out.status == 416) {
    sf.body.assign("Content-Range: bytes */");
    char digits[24];
    const int n = std::snprintf(digits, sizeof(digits), "%" PRIu64, file->size);
    sf.body.append(digits, n > 0 ? static_cast<std::size_t>(n) : 0).append("\r\n");
    return static_error(c, st, 416, user, sf.body, body_len);
  }
  const std::string_view rule = view(o.cache_control);
  const std::string_view cache_control = rule.empty() || has_header(user, "Cache-Control")
                                             ? std::string_view()
                                             : cache_control_for(rule, f.name);
  if (out.status == 304) {
    // RFC 9110 15.4.5: the validators and caching fields a 200 would have,
    // no content fields.
    add_line(&h, "ETag", rep.etag);
    if (vary) add_line(&h, "Vary", "Accept-Encoding");
    if (!cache_control.empty()) add_line(&h, "Cache-Control", cache_control);
    static_head(c, st, 304, user);
    finish_reply(c, st);
    flush_now(c, st, false);
    return 304;
  }
  if (!has_header(user, "Content-Type")) {
    add_line(&h, "Content-Type", mime_type_for(extension_of(f.name), view(o.mime_types)));
  }
  if (!coding.empty()) add_line(&h, "Content-Encoding", coding);
  const std::uint64_t first = out.status == 206 ? out.first : 0;
  const std::uint64_t end = out.status == 206 ? out.last + 1 : file->size;
  add_number(&h, "Content-Length", end - first);
  if (out.status == 206) {
    char range[80];
    const int n = std::snprintf(range, sizeof(range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                                first, end - 1, file->size);
    add_line(&h, "Content-Range", std::string_view(range, n > 0 ? static_cast<std::size_t>(n) : 0));
  }
  add_line(&h, "Accept-Ranges", "bytes");
  add_line(&h, "Last-Modified", file->last_modified);
  add_line(&h, "ETag", rep.etag);
  if (vary) add_line(&h, "Vary", "Accept-Encoding");
  if (!cache_control.empty()) add_line(&h, "Cache-Control", cache_control);
  static_head(c, st, out.status, user);
  const bool with_body = !r.head && end > first;
  if (body_len != nullptr) *body_len = with_body ? end - first : 0;
  if (with_body) {
    file_start(c, st, std::move(file), first, end);
  } else {
    finish_reply(c, st);
    flush_now(c, st, false);
  }
  return out.status;
}

}  // namespace mgffi
