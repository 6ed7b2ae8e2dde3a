// ASCII case folding for protocol text (header names, tokens, file
// extensions): locale-free, unlike <cctype>.
#pragma once

#include <cstddef>
#include <string_view>

namespace mgffi {

inline char ascii_lower(char ch) {
  return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); i++) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace mgffi
