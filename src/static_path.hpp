// Pure pieces of the static file server (http_static.cpp): request paths
// made safe to join to a root, and the option lists it reads (index
// names, Cache-Control rules matched by glob). No I/O.
#pragma once

#include <string>
#include <string_view>

namespace mgffi {

// Percent-decodes a request path into *out ('+' stays '+'). False on a
// malformed escape or a decoded NUL.
bool url_decode_path(std::string_view raw, std::string *out);

enum class PathCheck {
  kOk,
  kBad,      // a NUL byte
  kEscapes,  // ".." would climb above the root
};

// Normalises a decoded path ("/a//b/./c/../d/") into the relative path
// under a root: "a/b/d", segments joined by one '/', no "." or "..", no
// leading or trailing '/'. *dir_slash: the path ends with '/' (or is the
// root itself), i.e. it names a directory.
PathCheck normalize_path(std::string_view decoded, std::string *rel, bool *dir_slash);

// Whether a segment of rel starts with '.' (a dotfile or dot directory).
bool has_dot_segment(std::string_view rel);

// Whether the last segment of rel contains a '.' (it has an extension, or
// it is a dotfile): such paths never get the SPA fallback.
bool last_segment_has_dot(std::string_view rel);

// Glob matching of text: '*' any run of characters ('/' included), '?'
// one character, "[a-z0-9]" / "[!...]" a class, '\' quotes the next.
bool glob_match(std::string_view pattern, std::string_view text);

// The value of the first "pattern\tvalue" line of rules whose pattern
// matches text, or empty.
std::string_view cache_control_for(std::string_view rules, std::string_view text);

// Whether rules is well-formed: lines "pattern\tvalue", both non-empty,
// values without CR, LF or NUL.
bool valid_cache_rules(std::string_view rules);

// Calls fn(item) for each non-empty item of a comma-separated list (items
// trimmed of spaces); stops when fn returns true. Returns whether it did.
template <typename Fn>
bool each_list_item(std::string_view list, Fn &&fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty() && fn(item)) return true;
  }
  return false;
}

// Whether name is usable as one path segment of a list option (an index
// file name): non-empty, no '/', NUL, CR or LF, not "." or "..".
bool valid_file_name(std::string_view name);

}  // namespace mgffi
