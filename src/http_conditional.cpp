#include "http_conditional.hpp"

#include <cstdio>
#include <cstring>

#include "ascii.hpp"

namespace mgffi {

namespace {

bool is_ows(char ch) {
  return ch == ' ' || ch == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char ch) {
  return ch >= '0' && ch <= '9';
}

// ---- dates -------------------------------------------------------------------

constexpr const char *kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr const char *kDays[] = {"Thu", "Fri", "Sat", "Sun",
                                 "Mon", "Tue", "Wed"};  // from 1970-01-01
constexpr const char *kLongDays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<std::int64_t>(yoe) + era * 400 + (*m <= 2);
}

// A small cursor over a date string.
struct Scan {
  std::string_view s;
  std::size_t i = 0;
  bool lit(std::string_view t) {
    if (s.substr(i, t.size()) != t) return false;
    i += t.size();
    return true;
  }
  bool digits(int count, int *out) {
    int v = 0;
    for (int k = 0; k < count; k++) {
      if (i >= s.size() || !is_digit(s[i])) return false;
      v = v * 10 + (s[i++] - '0');
    }
    *out = v;
    return true;
  }
  bool month(int *out) {
    for (int k = 0; k < 12; k++) {
      if (s.substr(i, 3) == kMonths[k]) {
        i += 3;
        *out = k + 1;
        return true;
      }
    }
    return false;
  }
  bool short_day() {
    for (const char *day : kDays) {
      if (lit(day)) return true;
    }
    return false;
  }
  bool long_day() {
    for (const char *day : kLongDays) {
      if (lit(day)) return true;
    }
    return false;
  }
  // "HH:MM:SS"
  bool time(int *h, int *mi, int *sec) {
    return digits(2, h) && lit(":") && digits(2, mi) && lit(":") && digits(2, sec);
  }
  bool done() const { return i == s.size(); }
};

bool make_time(int year, int month, int day, int h, int mi, int sec, std::int64_t *out) {
  if (month < 1 || month > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60) {
    return false;
  }
  *out = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
         h * 3600 + mi * 60 + sec;
  return true;
}

// ---- entity tags -------------------------------------------------------------

bool is_etagc(unsigned char ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x7e) || ch >= 0x80;
}

// The next entity tag of a list at *pos (commas and OWS before it
// skipped): false at the end or at a malformed element.
bool next_etag(std::string_view list, std::size_t *pos, std::string_view *opaque, bool *weak) {
  std::size_t i = *pos;
  while (i < list.size() && (is_ows(list[i]) || list[i] == ',')) i++;
  if (i >= list.size()) return false;
  *weak = false;
  if (list.substr(i, 2) == "W/") {
    *weak = true;
    i += 2;
  }
  if (i >= list.size() || list[i] != '"') return false;
  const std::size_t start = i++;
  while (i < list.size() && is_etagc(static_cast<unsigned char>(list[i]))) i++;
  if (i >= list.size() || list[i] != '"') return false;
  i++;
  *opaque = list.substr(start, i - start);
  // What follows must be the end or a list separator.
  std::size_t j = i;
  while (j < list.size() && is_ows(list[j])) j++;
  if (j < list.size() && list[j] != ',') return false;
  *pos = j;
  return true;
}

// ---- ranges ------------------------------------------------------------------

constexpr int kMaxRanges = 32;      // more satisfiable ranges: the whole (200)
constexpr int kMaxRangeSpecs = 64;  // more elements at all: Range ignored

// Digits of s from *i: false when there are none; saturates at UINT64_MAX.
bool parse_pos(std::string_view s, std::size_t *i, std::uint64_t *out) {
  std::size_t k = *i;
  std::uint64_t v = 0;
  bool saturated = false;
  while (k < s.size() && is_digit(s[k])) {
    const unsigned d = static_cast<unsigned>(s[k] - '0');
    if (v > (UINT64_MAX - d) / 10) saturated = true;
    if (!saturated) v = v * 10 + d;
    k++;
  }
  if (k == *i) return false;
  *i = k;
  *out = saturated ? UINT64_MAX : v;
  return true;
}

struct Span {
  std::uint64_t first, last;
};

}  // namespace

bool parse_http_date(std::string_view s, std::int64_t *out) {
  int year = 0, month = 0, day = 0, h = 0, mi = 0, sec = 0;
  {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    Scan p{s};
    if (p.short_day() && p.lit(", ") && p.digits(2, &day) && p.lit(" ") && p.month(&month) &&
        p.lit(" ") && p.digits(4, &year) && p.lit(" ") && p.time(&h, &mi, &sec) && p.lit(" GMT") &&
        p.done()) {
      return make_time(year, month, day, h, mi, sec, out);
    }
  }
  {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    Scan p{s};
    if (p.long_day() && p.lit(", ") && p.digits(2, &day) && p.lit("-") && p.month(&month) &&
        p.lit("-") && p.digits(2, &year) && p.lit(" ") && p.time(&h, &mi, &sec) && p.lit(" GMT") &&
        p.done()) {
      year += year < 70 ? 2000 : 1900;
      return make_time(year, month, day, h, mi, sec, out);
    }
  }
  {  // asctime: "Sun Nov  6 08:49:37 1994"
    Scan p{s};
    if (p.short_day() && p.lit(" ") && p.month(&month) && p.lit(" ")) {
      bool ok = p.lit(" ") ? p.digits(1, &day) : p.digits(2, &day);
      if (ok && p.lit(" ") && p.time(&h, &mi, &sec) && p.lit(" ") && p.digits(4, &year) &&
          p.done()) {
        return make_time(year, month, day, h, mi, sec, out);
      }
    }
  }
  return false;
}

void format_http_date(std::int64_t t, char out[30]) {
  constexpr std::int64_t kMax = 253402300799;  // 9999-12-31 23:59:59
  if (t < 0) t = 0;
  if (t > kMax) t = kMax;
  const std::int64_t days = t / 86400;
  const unsigned rem = static_cast<unsigned>(t % 86400);
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02u %s %04u %02u:%02u:%02u GMT", kDays[days % 7], d,
                kMonths[m - 1], static_cast<unsigned>(y), rem / 3600, rem / 60 % 60, rem % 60);
  std::memcpy(out, buf, 29);
  out[29] = '\0';
}

bool etag_list_matches(const HeaderValues &lists, std::string_view etag, bool weak) {
  for (int k = 0; k < lists.n; k++) {
    const std::string_view list = trim(lists.v[k]);
    if (list == "*") return true;
    std::size_t pos = 0;
    std::string_view opaque;
    bool is_weak = false;
    while (next_etag(list, &pos, &opaque, &is_weak)) {
      if (opaque == etag && (weak || !is_weak)) return true;
    }
  }
  return false;
}

RangeResult parse_range(std::string_view value, std::uint64_t size, std::uint64_t *first,
                        std::uint64_t *last) {
  value = trim(value);
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(value.substr(0, eq), "bytes")) {
    return RangeResult::kIgnore;  // another unit, or not a range at all
  }
  Span spans[kMaxRanges];
  int count = 0, specs = 0;
  bool too_many = false;
  std::string_view set = value.substr(eq + 1);
  std::size_t i = 0;
  while (i < set.size()) {
    while (i < set.size() && is_ows(set[i])) i++;
    if (i < set.size() && set[i] == ',') {  // an empty element
      i++;
      continue;
    }
    if (i >= set.size()) break;
    if (++specs > kMaxRangeSpecs) return RangeResult::kIgnore;
    std::uint64_t a = 0, b = UINT64_MAX;
    bool satisfiable;
    Span span{};
    if (set[i] == '-') {  // suffix-range: the last b bytes
      i++;
      if (!parse_pos(set, &i, &b)) return RangeResult::kIgnore;
      satisfiable = b > 0 && size > 0;
      if (satisfiable) span = {b >= size ? 0 : size - b, size - 1};
    } else {
      if (!parse_pos(set, &i, &a)) return RangeResult::kIgnore;
      if (i >= set.size() || set[i] != '-') return RangeResult::kIgnore;
      i++;
      if (i < set.size() && is_digit(set[i])) {
        if (!parse_pos(set, &i, &b)) return RangeResult::kIgnore;
        if (b < a) return RangeResult::kIgnore;  // an invalid int-range
      }
      satisfiable = a < size;
      if (satisfiable) span = {a, b >= size ? size - 1 : b};
    }
    while (i < set.size() && is_ows(set[i])) i++;
    if (i < set.size() && set[i] != ',') return RangeResult::kIgnore;
    if (!satisfiable) continue;
    if (count == kMaxRanges) {
      too_many = true;
      continue;
    }
    // Insertion sort by first byte.
    int k = count++;
    while (k > 0 && spans[k - 1].first > span.first) {
      spans[k] = spans[k - 1];
      k--;
    }
    spans[k] = span;
  }
  if (specs == 0) return RangeResult::kIgnore;
  // A zero-length representation has no byte to send: the whole (empty)
  // one is the answer (RFC 9110 lets a server ignore Range).
  if (size == 0) return RangeResult::kIgnore;
  if (count == 0) return too_many ? RangeResult::kIgnore : RangeResult::kUnsatisfiable;
  if (too_many) return RangeResult::kIgnore;
  // Coalesce overlapping and adjacent ranges (RFC 9110 14.2).
  Span merged = spans[0];
  for (int k = 1; k < count; k++) {
    if (spans[k].first > merged.last + 1) return RangeResult::kIgnore;  // two parts: 200
    if (spans[k].last > merged.last) merged.last = spans[k].last;
  }
  *first = merged.first;
  *last = merged.last;
  return RangeResult::kSingle;
}

namespace {

// If-Modified-Since and If-Unmodified-Since: one valid HTTP-date, or
// nothing to evaluate (the field is then ignored: RFC 9110 13.1.3, 13.1.4).
bool one_date(const HeaderValues &h, std::int64_t *out) {
  return h.n == 1 && !h.overflow && parse_http_date(trim(h.v[0]), out);
}

// If-Range (13.1.5): a strong entity tag that matches, or the exact
// Last-Modified date when that is a strong validator.
bool if_range_holds(const HeaderValues &h, const Representation &r) {
  if (h.n != 1 || h.overflow) return false;
  const std::string_view v = trim(h.v[0]);
  if (!v.empty() && (v.front() == '"' || v.substr(0, 2) == "W/")) {
    return v.front() == '"' && v == r.etag;
  }
  std::int64_t date;
  return r.mtime_strong && parse_http_date(v, &date) && date == r.mtime;
}

}  // namespace

Outcome evaluate_preconditions(const Preconditions &p, const Representation &r, bool is_get) {
  Outcome o;
  std::int64_t date;
  if (!p.if_match.empty()) {
    if (!etag_list_matches(p.if_match, r.etag, false)) {
      o.status = 412;
      return o;
    }
  } else if (one_date(p.if_unmodified_since, &date) && r.mtime > date) {
    o.status = 412;
    return o;
  }
  if (!p.if_none_match.empty()) {
    if (etag_list_matches(p.if_none_match, r.etag, true)) {
      o.status = 304;
      return o;
    }
  } else if (one_date(p.if_modified_since, &date) && r.mtime <= date) {
    o.status = 304;
    return o;
  }
  if (!is_get || p.range.empty() || p.range.n != 1 || p.range.overflow) return o;
  if (!p.if_range.empty() && !if_range_holds(p.if_range, r)) return o;
  switch (parse_range(p.range.v[0], r.size, &o.first, &o.last)) {
    case RangeResult::kSingle: o.status = 206; break;
    case RangeResult::kUnsatisfiable: o.status = 416; break;
    case RangeResult::kIgnore: break;
  }
  return o;
}

namespace {

// A qvalue ("0", "0.5", "1.000") in thousandths; -1 when malformed.
int parse_q(std::string_view v) {
  v = trim(v);
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return -1;
  int scale = 100;
  for (std::size_t i = 2; i < v.size(); i++, scale /= 10) {
    if (!is_digit(v[i])) return -1;
    q += (v[i] - '0') * scale;
  }
  return q > 1000 ? -1 : q;
}

}  // namespace

int choose_coding(const HeaderValues &accept, const std::string_view *codings, int n) {
  constexpr int kMaxCodings = 8;
  if (n > kMaxCodings) n = kMaxCodings;
  int q[kMaxCodings];
  for (int k = 0; k < n; k++) q[k] = -1;  // not mentioned
  int star = -1;
  for (int line = 0; line < accept.n; line++) {
    std::string_view rest = accept.v[line];
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const std::size_t semi = item.find(';');
      const std::string_view name = trim(item.substr(0, semi));
      if (name.empty()) continue;
      int weight = 1000;
      if (semi != std::string_view::npos) {
        std::string_view params = item.substr(semi + 1);
        while (!params.empty()) {
          const std::size_t next = params.find(';');
          const std::string_view param = trim(params.substr(0, next));
          params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
          if (param.size() >= 2 && ascii_lower(param[0]) == 'q' && param[1] == '=') {
            weight = parse_q(param.substr(2));
            if (weight < 0) weight = 0;  // malformed: not acceptable
          }
        }
      }
      if (name == "*") {
        star = weight;
        continue;
      }
      for (int k = 0; k < n; k++) {
        if (iequals(name, codings[k]) || (iequals(codings[k], "gzip") && iequals(name, "x-gzip"))) {
          q[k] = weight;
        }
      }
    }
  }
  int best = -1, best_q = 0;
  for (int k = 0; k < n; k++) {
    const int w = q[k] >= 0 ? q[k] : star;
    if (w > best_q) {
      best = k;
      best_q = w;
    }
  }
  return best;
}

}  // namespace mgffi
