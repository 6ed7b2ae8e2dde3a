#include "dir_listing.hpp"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <vector>

#include "http_conditional.hpp"
#include "platform.hpp"

namespace mgffi {

namespace {

struct Item {
  std::string name;
  bool is_dir = false;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
};

void html_escape(std::string_view s, std::string *out) {
  for (char ch : s) {
    switch (ch) {
      case '&': out->append("&amp;"); break;
      case '<': out->append("&lt;"); break;
      case '>': out->append("&gt;"); break;
      case '"': out->append("&quot;"); break;
      case '\'': out->append("&#39;"); break;
      default: out->push_back(ch);
    }
  }
}

// RFC 3986 unreserved characters stay; everything else is %XX.
void url_encode(std::string_view s, std::string *out) {
  static const char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    const unsigned char ch = static_cast<unsigned char>(c);
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out->push_back(c);
    } else {
      out->push_back('%');
      out->push_back(kHex[ch >> 4]);
      out->push_back(kHex[ch & 15]);
    }
  }
}

}  // namespace

bool build_listing(const std::string &dir_path, std::string_view shown, bool show_dot, bool at_root,
                   std::string *html) {
  DIR *dir = opendir(dir_path.c_str());
  if (dir == nullptr) return false;
  std::vector<Item> items;
#if !defined(_WIN32)
  const int dfd = dirfd(dir);
#endif
  while (dirent *de = readdir(dir)) {
    const std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    if (name.front() == '.' && !show_dot) continue;
    Item item;
    item.name.assign(name.data(), name.size());
    struct stat sb;
#if !defined(_WIN32)
    const int rc = fstatat(dfd, de->d_name, &sb, 0);
#else
    const int rc = stat((dir_path + "/" + item.name).c_str(), &sb);
#endif
    if (rc == 0) {
      item.is_dir = S_ISDIR(sb.st_mode);
      item.size = static_cast<std::uint64_t>(sb.st_size);
      item.mtime = mtime_sec(sb);
    }
    items.push_back(std::move(item));
  }
  closedir(dir);
  std::sort(items.begin(), items.end(),
            [](const Item &a, const Item &b) { return a.name < b.name; });
  html->clear();
  html->append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
  html_escape(shown, html);
  html->append("</title></head>\n<body><h1>Index of ");
  html_escape(shown, html);
  html->append("</h1>\n<table>\n");
  if (!at_root) html->append("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
  for (const Item &item : items) {
    html->append("<tr><td><a href=\"");
    std::string href;
    url_encode(item.name, &href);
    if (item.is_dir) href.push_back('/');
    html_escape(href, html);
    html->append("\">");
    html_escape(item.name, html);
    if (item.is_dir) html->push_back('/');
    html->append("</a></td><td>");
    char date[30];
    format_http_date(item.mtime, date);
    html->append(date);
    html->append("</td><td>");
    if (item.is_dir) {
      html->push_back('-');
    } else {
      char size[24];
      std::snprintf(size, sizeof(size), "%" PRIu64, item.size);
      html->append(size);
    }
    html->append("</td></tr>\n");
  }
  html->append("</table>\n</body></html>\n");
  return true;
}

}  // namespace mgffi
