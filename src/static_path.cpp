#include "static_path.hpp"

namespace mgffi {

namespace {

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// One glob class "[...]" at pattern[*pi] (after the '['): whether ch is
// in it; *pi moves past the ']'. False with *pi unchanged if unterminated.
bool class_match(std::string_view p, std::size_t *pi, char ch, bool *matched) {
  std::size_t i = *pi;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    i++;
  }
  bool in = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      if (hi == '\\' && i + 3 < p.size()) {
        hi = p[i + 3];
        i++;
      }
      i += 2;
    }
    if (ch >= lo && ch <= hi) in = true;
    i++;
  }
  if (i >= p.size()) return false;  // no closing ']'
  *pi = i + 1;
  *matched = in != negate;
  return true;
}

}  // namespace

bool url_decode_path(std::string_view raw, std::string *out) {
  out->clear();
  out->reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); i++) {
    char ch = raw[i];
    if (ch == '%') {
      if (i + 2 >= raw.size()) return false;
      const int hi = hex_value(raw[i + 1]);
      const int lo = hex_value(raw[i + 2]);
      if (hi < 0 || lo < 0) return false;
      ch = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (ch == '\0') return false;
    out->push_back(ch);
  }
  return true;
}

PathCheck normalize_path(std::string_view decoded, std::string *rel, bool *dir_slash) {
  rel->clear();
  *dir_slash = decoded.empty() || decoded.back() == '/';
  std::size_t i = 0;
  while (i <= decoded.size()) {
    std::size_t end = decoded.find('/', i);
    if (end == std::string_view::npos) end = decoded.size();
    const std::string_view seg = decoded.substr(i, end - i);
    i = end + 1;
    if (seg.find('\0') != std::string_view::npos) return PathCheck::kBad;
    if (seg.empty() || seg == ".") {
      if (seg == "." && end == decoded.size()) *dir_slash = true;
      continue;
    }
    if (seg == "..") {
      if (rel->empty()) return PathCheck::kEscapes;
      const std::size_t cut = rel->rfind('/');
      rel->resize(cut == std::string::npos ? 0 : cut);
      if (end == decoded.size()) *dir_slash = true;
      continue;
    }
    if (!rel->empty()) rel->push_back('/');
    rel->append(seg.data(), seg.size());
  }
  if (rel->empty()) *dir_slash = true;
  return PathCheck::kOk;
}

bool has_dot_segment(std::string_view rel) {
  if (!rel.empty() && rel.front() == '.') return true;
  return rel.find("/.") != std::string_view::npos;
}

bool last_segment_has_dot(std::string_view rel) {
  const std::size_t slash = rel.rfind('/');
  const std::string_view last = slash == std::string_view::npos ? rel : rel.substr(slash + 1);
  return last.find('.') != std::string_view::npos;
}

bool glob_match(std::string_view p, std::string_view t) {
  std::size_t pi = 0, ti = 0;
  std::size_t star_p = std::string_view::npos, star_t = 0;
  while (ti < t.size()) {
    if (pi < p.size()) {
      const char pc = p[pi];
      if (pc == '*') {
        star_p = ++pi;
        star_t = ti;
        continue;
      }
      if (pc == '?') {
        pi++;
        ti++;
        continue;
      }
      if (pc == '[') {
        std::size_t next = pi + 1;
        bool matched = false;
        if (class_match(p, &next, t[ti], &matched)) {
          if (matched) {
            pi = next;
            ti++;
            continue;
          }
        } else if (t[ti] == '[') {  // an unterminated '[' is itself
          pi++;
          ti++;
          continue;
        }
      } else {
        char lit = pc;
        std::size_t step = 1;
        if (pc == '\\' && pi + 1 < p.size()) {
          lit = p[pi + 1];
          step = 2;
        }
        if (lit == t[ti]) {
          pi += step;
          ti++;
          continue;
        }
      }
    }
    // Mismatch: let the last '*' take one more character.
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    ti = ++star_t;
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

std::string_view cache_control_for(std::string_view rules, std::string_view text) {
  while (!rules.empty()) {
    const std::size_t nl = rules.find('\n');
    const std::string_view line = rules.substr(0, nl);
    rules = nl == std::string_view::npos ? std::string_view() : rules.substr(nl + 1);
    const std::size_t tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    if (glob_match(line.substr(0, tab), text)) return line.substr(tab + 1);
  }
  return {};
}

bool valid_cache_rules(std::string_view rules) {
  while (!rules.empty()) {
    const std::size_t nl = rules.find('\n');
    const std::string_view line = rules.substr(0, nl);
    rules = nl == std::string_view::npos ? std::string_view() : rules.substr(nl + 1);
    if (line.empty()) continue;
    const std::size_t tab = line.find('\t');
    if (tab == 0 || tab == std::string_view::npos || tab + 1 == line.size()) return false;
    for (char ch : line.substr(tab + 1)) {
      if (ch == '\r' || ch == '\0' || ch == '\t') return false;
    }
    if (line.substr(0, tab).find('\0') != std::string_view::npos) return false;
  }
  return true;
}

bool valid_file_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char ch : name) {
    if (ch == '/' || ch == '\0' || ch == '\r' || ch == '\n') return false;
  }
  return true;
}

}  // namespace mgffi
