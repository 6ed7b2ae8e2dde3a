// RFC 9110's rules for serving a stored representation, free of I/O:
// HTTP-dates (13.1.3), entity tags and their comparison (8.8.3), the
// precondition order (13.2.2: If-Match, If-Unmodified-Since, If-None-Match,
// If-Modified-Since, If-Range), byte ranges (14.1.1, 14.2) and the choice
// of a content coding by Accept-Encoding (12.5.3).
#pragma once

#include <cstdint>
#include <string_view>

namespace mgffi {

// Every line of one request header field (a list may be split over lines).
struct HeaderValues {
  static constexpr int kMax = 8;
  std::string_view v[kMax];
  int n = 0;
  bool overflow = false;  // more lines than kMax
  bool empty() const { return n == 0 && !overflow; }
  void add(std::string_view s) {
    if (n < kMax) {
      v[n++] = s;
    } else {
      overflow = true;
    }
  }
};

// Seconds since the epoch of an HTTP-date in any of its three forms
// (IMF-fixdate, RFC 850 with a two-digit year read as 1970-2069, asctime).
bool parse_http_date(std::string_view s, std::int64_t *out);
// The IMF-fixdate of t ("Sun, 06 Nov 1994 08:49:37 GMT"): 29 chars + NUL.
void format_http_date(std::int64_t t, char out[30]);

// Whether any entity tag of the lists matches etag (a strong tag with its
// quotes: "\"abc\""), "*" matching any. Strong comparison: weak tags (W/)
// never match; weak comparison: W/ is ignored. A malformed list matches
// from what precedes the error only.
bool etag_list_matches(const HeaderValues &lists, std::string_view etag, bool weak);

// A Range header value against a representation of size bytes.
enum class RangeResult {
  kIgnore,         // no byte range to honour: absent, not "bytes", invalid, a
                   // zero-length representation, or several ranges that do
                   // not coalesce into one (answered with the whole: 200)
  kSingle,         // one range (after coalescing): *first..*last inclusive
  kUnsatisfiable,  // valid, but no range overlaps the representation: 416
};
RangeResult parse_range(std::string_view value, std::uint64_t size, std::uint64_t *first,
                        std::uint64_t *last);

struct Preconditions {
  HeaderValues if_match, if_none_match, if_modified_since, if_unmodified_since, if_range, range;
};

struct Representation {
  std::string_view etag;      // strong, with quotes
  std::int64_t mtime = 0;     // Last-Modified, seconds since the epoch
  bool mtime_strong = false;  // Last-Modified is a strong validator (more
                              // than a second before now: 13.1.5)
  std::uint64_t size = 0;
};

struct Outcome {
  int status = 200;                   // 200, 206, 304, 412 or 416
  std::uint64_t first = 0, last = 0;  // 206: the range (inclusive)
};

// The answer to a GET (is_get) or HEAD request for r with preconditions p,
// in RFC 9110 13.2.2's order. Range is honoured for GET only (14.2).
Outcome evaluate_preconditions(const Preconditions &p, const Representation &r, bool is_get);

// Which of codings (content-coding names in order of preference, e.g.
// {"br", "gzip"}) the Accept-Encoding lines accept best: the highest q,
// ties going to the earlier coding; -1 for none (also without any
// Accept-Encoding line: identity is what every client understands).
int choose_coding(const HeaderValues &accept, const std::string_view *codings, int n);

}  // namespace mgffi
