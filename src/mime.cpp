#include "mime.hpp"

#include <cstddef>

#include "ascii.hpp"

namespace mgffi {

namespace {

struct MimeEntry {
  const char *ext;
  const char *type;
};

// Sorted by extension (binary search). Text types say their charset, as
// browsers otherwise guess it.
constexpr MimeEntry kMimeTypes[] = {
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"br", "application/x-brotli"},
    {"bz2", "application/x-bzip2"},
    {"cjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"jxl", "image/jxl"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mid", "audio/midi"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/opus"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"rtf", "application/rtf"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

constexpr std::string_view kDefaultType = "application/octet-stream";

// -1, 0, 1 as ext (any case) sorts before, equal to, after key (lower case).
int compare_ext(std::string_view ext, const char *key) {
  std::size_t i = 0;
  for (; i < ext.size() && key[i] != '\0'; i++) {
    const char a = ascii_lower(ext[i]);
    if (a != key[i]) return a < key[i] ? -1 : 1;
  }
  if (i == ext.size()) return key[i] == '\0' ? 0 : -1;
  return 1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(ext, type) for each "ext=type" item until it returns true.
// Returns false when an item is malformed.
template <typename Fn>
bool each_override(std::string_view list, Fn &&fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view ext = trim(item.substr(0, eq));
    std::string_view type = trim(item.substr(eq + 1));
    if (!ext.empty() && ext.front() == '.') ext.remove_prefix(1);
    if (ext.empty() || type.empty()) return false;
    if (fn(ext, type)) return true;
  }
  return true;
}

}  // namespace

std::string_view extension_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = last.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return last.substr(dot + 1);
}

std::string_view mime_type_for(std::string_view ext, std::string_view overrides) {
  if (ext.empty()) return kDefaultType;
  std::string_view found;
  each_override(overrides, [&](std::string_view e, std::string_view type) {
    if (!iequals(e, ext)) return false;
    found = type;
    return true;
  });
  if (!found.empty()) return found;
  std::size_t lo = 0, hi = sizeof(kMimeTypes) / sizeof(kMimeTypes[0]);
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const int cmp = compare_ext(ext, kMimeTypes[mid].ext);
    if (cmp == 0) return kMimeTypes[mid].type;
    if (cmp < 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return kDefaultType;
}

bool valid_mime_overrides(std::string_view overrides) {
  for (char ch : overrides) {
    if (ch == '\r' || ch == '\n' || ch == '\0') return false;
  }
  return each_override(overrides, [](std::string_view, std::string_view) { return false; });
}

}  // namespace mgffi
