// Unit tests of the static file server's pure pieces, linked directly:
// HTTP-dates, entity tags, byte ranges and RFC 9110's precondition order
// (src/http_conditional.cpp), Accept-Encoding, the MIME table
// (src/mime.cpp), request paths and option lists (src/static_path.cpp),
// and the open-file cache on real files (src/file_cache.cpp).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "file_cache.hpp"
#include "http_conditional.hpp"
#include "mime.hpp"
#include "static_path.hpp"

namespace mgffi {
namespace {

HeaderValues Values(std::initializer_list<std::string_view> lines) {
  HeaderValues h;
  for (std::string_view line : lines) h.add(line);
  return h;
}

// ---- dates -------------------------------------------------------------------

TEST(HttpDate, ReadsTheThreeFormsOfRfc9110) {
  std::int64_t t = 0;
  ASSERT_TRUE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parse_http_date("Sun Nov  6 08:49:37 1994", &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", &t));
  EXPECT_EQ(t, 0);
  ASSERT_TRUE(parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT", &t));  // 2030
  EXPECT_EQ(t, 1893456000);
}

TEST(HttpDate, RefusesWhatIsNotAnHttpDate) {
  std::int64_t t = 0;
  for (const char *bad :
       {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT x", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "784111777"}) {
    EXPECT_FALSE(parse_http_date(bad, &t)) << bad;
  }
}

TEST(HttpDate, FormatsImfFixdate) {
  char out[30];
  format_http_date(784111777, out);
  EXPECT_STREQ(out, "Sun, 06 Nov 1994 08:49:37 GMT");
  format_http_date(0, out);
  EXPECT_STREQ(out, "Thu, 01 Jan 1970 00:00:00 GMT");
  format_http_date(1709251200, out);  // a leap day
  EXPECT_STREQ(out, "Fri, 01 Mar 2024 00:00:00 GMT");
  format_http_date(1709164800, out);
  EXPECT_STREQ(out, "Thu, 29 Feb 2024 00:00:00 GMT");
  std::int64_t back = 0;
  for (std::int64_t t : {0ll, 951782400ll, 1700000000ll, 4102444799ll}) {
    format_http_date(t, out);
    ASSERT_TRUE(parse_http_date(out, &back)) << out;
    EXPECT_EQ(back, t) << out;
  }
}

// ---- entity tags ---------------------------------------------------------------

TEST(EntityTags, StrongAndWeakComparison) {
  const std::string_view tag = "\"abc\"";
  EXPECT_TRUE(etag_list_matches(Values({"\"abc\""}), tag, false));
  EXPECT_TRUE(etag_list_matches(Values({"\"abc\""}), tag, true));
  EXPECT_FALSE(etag_list_matches(Values({"W/\"abc\""}), tag, false))
      << "weak never matches strongly";
  EXPECT_TRUE(etag_list_matches(Values({"W/\"abc\""}), tag, true));
  EXPECT_FALSE(etag_list_matches(Values({"\"abcd\""}), tag, true));
  EXPECT_FALSE(etag_list_matches(Values({"abc"}), tag, true)) << "unquoted";
}

TEST(EntityTags, ListsStarsAndSeveralLines) {
  const std::string_view tag = "\"abc\"";
  EXPECT_TRUE(etag_list_matches(Values({"\"x\", \"y\" ,W/\"abc\""}), tag, true));
  EXPECT_TRUE(etag_list_matches(Values({"\"x\"", "\"abc\""}), tag, true));
  EXPECT_TRUE(etag_list_matches(Values({" * "}), tag, false));
  EXPECT_TRUE(etag_list_matches(Values({",,\"abc\",,"}), tag, true)) << "empty elements";
  EXPECT_FALSE(etag_list_matches(Values({"\"x\", \"y\""}), tag, true));
  EXPECT_FALSE(etag_list_matches(Values({}), tag, true));
  // A malformed element ends the list: what came before it still counts.
  EXPECT_TRUE(etag_list_matches(Values({"\"abc\", junk"}), tag, true));
  EXPECT_FALSE(etag_list_matches(Values({"junk, \"abc\""}), tag, true));
}

// ---- ranges ----------------------------------------------------------------------

struct RangeCase {
  const char *value;
  RangeResult result;
  std::uint64_t first, last;
};

TEST(ByteRanges, OneRangeOfEachForm) {
  const RangeCase cases[] = {
      {"bytes=0-0", RangeResult::kSingle, 0, 0},
      {"bytes=2-5", RangeResult::kSingle, 2, 5},
      {"bytes=10-", RangeResult::kSingle, 10, 99},
      {"bytes=-10", RangeResult::kSingle, 90, 99},
      {"bytes=-1000", RangeResult::kSingle, 0, 99},  // longer than the file: all of it
      {"bytes=90-1000", RangeResult::kSingle, 90, 99},
      {"BYTES=1-2", RangeResult::kSingle, 1, 2},
      {"bytes=99-99999999999999999999999", RangeResult::kSingle, 99, 99},
      {"bytes=100-", RangeResult::kUnsatisfiable, 0, 0},
      {"bytes=100-200", RangeResult::kUnsatisfiable, 0, 0},
      {"bytes=-0", RangeResult::kUnsatisfiable, 0, 0},
      {"bytes=99999999999999999999999-", RangeResult::kUnsatisfiable, 0, 0},
      {"bytes=5-2", RangeResult::kIgnore, 0, 0},  // invalid: the whole file
      {"bytes=a-b", RangeResult::kIgnore, 0, 0},
      {"bytes=1-2-3", RangeResult::kIgnore, 0, 0},
      {"bytes=", RangeResult::kIgnore, 0, 0},
      {"bytes 1-2", RangeResult::kIgnore, 0, 0},
      {"items=1-2", RangeResult::kIgnore, 0, 0},
      {"bytes=-", RangeResult::kIgnore, 0, 0},
  };
  for (const RangeCase &c : cases) {
    std::uint64_t first = 0, last = 0;
    EXPECT_EQ(parse_range(c.value, 100, &first, &last), c.result) << c.value;
    if (c.result == RangeResult::kSingle) {
      EXPECT_EQ(first, c.first) << c.value;
      EXPECT_EQ(last, c.last) << c.value;
    }
  }
}

TEST(ByteRanges, SeveralRangesCoalesceOrGiveTheWhole) {
  std::uint64_t first = 0, last = 0;
  ASSERT_EQ(parse_range("bytes=0-9, 10-19", 100, &first, &last), RangeResult::kSingle);
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(last, 19u);
  ASSERT_EQ(parse_range("bytes=50-60,0-55", 100, &first, &last), RangeResult::kSingle);
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(last, 60u);
  ASSERT_EQ(parse_range("bytes=0-4,200-300", 100, &first, &last), RangeResult::kSingle)
      << "unsatisfiable ranges drop out";
  EXPECT_EQ(last, 4u);
  EXPECT_EQ(parse_range("bytes=0-4,10-14", 100, &first, &last), RangeResult::kIgnore)
      << "two parts: answered with the whole";
  EXPECT_EQ(parse_range("bytes=0-1,-1", 100, &first, &last), RangeResult::kIgnore);
  EXPECT_EQ(parse_range("bytes=200-300, 400-", 100, &first, &last), RangeResult::kUnsatisfiable);
  std::string many = "bytes=0-0";
  for (int i = 0; i < 100; i++) many += ",0-0";
  EXPECT_EQ(parse_range(many, 100, &first, &last), RangeResult::kIgnore) << "too many elements";
}

TEST(ByteRanges, AnEmptyFileIsSentWhole) {
  std::uint64_t first = 0, last = 0;
  EXPECT_EQ(parse_range("bytes=0-", 0, &first, &last), RangeResult::kIgnore);
  EXPECT_EQ(parse_range("bytes=-5", 0, &first, &last), RangeResult::kIgnore);
}

// ---- preconditions -------------------------------------------------------------

Representation Rep() {
  Representation r;
  r.etag = "\"v1\"";
  r.mtime = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  r.mtime_strong = true;
  r.size = 100;
  return r;
}

int Status(const Preconditions &p, bool is_get = true) {
  return evaluate_preconditions(p, Rep(), is_get).status;
}

TEST(Preconditions, IfNoneMatchGives304OrTheFile) {
  Preconditions p;
  p.if_none_match = Values({"\"v1\""});
  EXPECT_EQ(Status(p), 304);
  EXPECT_EQ(Status(p, false), 304) << "HEAD";
  p.if_none_match = Values({"W/\"v1\""});
  EXPECT_EQ(Status(p), 304) << "weak comparison";
  p.if_none_match = Values({"\"v0\", \"v1\""});
  EXPECT_EQ(Status(p), 304) << "a list";
  p.if_none_match = Values({"*"});
  EXPECT_EQ(Status(p), 304);
  p.if_none_match = Values({"\"v0\""});
  EXPECT_EQ(Status(p), 200);
}

TEST(Preconditions, IfModifiedSinceIsIgnoredWithIfNoneMatch) {
  Preconditions p;
  p.if_modified_since = Values({"Sun, 06 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 304) << "not modified since its own date";
  p.if_modified_since = Values({"Mon, 07 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 304) << "not modified since a later date";
  p.if_modified_since = Values({"Sat, 05 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 200) << "modified since";
  p.if_modified_since = Values({"garbage"});
  EXPECT_EQ(Status(p), 200) << "an invalid date is ignored";
  p.if_modified_since = Values({"Mon, 07 Nov 1994 08:49:37 GMT"});
  p.if_none_match = Values({"\"v0\""});
  EXPECT_EQ(Status(p), 200) << "If-None-Match decides alone (RFC 9110 13.1.3)";
}

TEST(Preconditions, IfMatchAndIfUnmodifiedSinceGive412) {
  Preconditions p;
  p.if_match = Values({"\"v0\""});
  EXPECT_EQ(Status(p), 412);
  p.if_match = Values({"W/\"v1\""});
  EXPECT_EQ(Status(p), 412) << "strong comparison";
  p.if_match = Values({"\"v0\", \"v1\""});
  EXPECT_EQ(Status(p), 200);
  p.if_match = Values({"*"});
  EXPECT_EQ(Status(p), 200);
  p = Preconditions();
  p.if_unmodified_since = Values({"Sat, 05 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 412);
  p.if_unmodified_since = Values({"Sun, 06 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 200);
  p.if_unmodified_since = Values({"Sat, 05 Nov 1994 08:49:37 GMT"});
  p.if_match = Values({"\"v1\""});
  EXPECT_EQ(Status(p), 200) << "If-Match decides alone";
  p.if_none_match = Values({"\"v1\""});
  p.if_match = Values({"\"v0\""});
  EXPECT_EQ(Status(p), 412) << "If-Match is evaluated before If-None-Match";
}

TEST(Preconditions, RangesAndIfRange) {
  Preconditions p;
  p.range = Values({"bytes=-10"});
  Outcome o = evaluate_preconditions(p, Rep(), true);
  EXPECT_EQ(o.status, 206);
  EXPECT_EQ(o.first, 90u);
  EXPECT_EQ(o.last, 99u);
  EXPECT_EQ(Status(p, false), 200) << "HEAD ignores Range";
  p.range = Values({"bytes=500-"});
  EXPECT_EQ(Status(p), 416);
  p.range = Values({"bytes=0-1", "bytes=2-3"});
  EXPECT_EQ(Status(p), 200) << "two Range lines: ignored";
  p.range = Values({"bytes=0-1"});
  p.if_range = Values({"\"v1\""});
  EXPECT_EQ(Status(p), 206);
  p.if_range = Values({"\"v0\""});
  EXPECT_EQ(Status(p), 200) << "another tag: the whole file";
  p.if_range = Values({"W/\"v1\""});
  EXPECT_EQ(Status(p), 200) << "a weak tag never matches";
  p.if_range = Values({"Sun, 06 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 206) << "the exact Last-Modified";
  p.if_range = Values({"Mon, 07 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(Status(p), 200);
  Representation weak = Rep();
  weak.mtime_strong = false;
  p.if_range = Values({"Sun, 06 Nov 1994 08:49:37 GMT"});
  EXPECT_EQ(evaluate_preconditions(p, weak, true).status, 200)
      << "a date only when Last-Modified is a strong validator";
  p = Preconditions();
  p.range = Values({"bytes=0-1"});
  p.if_none_match = Values({"\"v1\""});
  EXPECT_EQ(Status(p), 304) << "conditions come before the range";
}

// ---- Accept-Encoding -------------------------------------------------------------

int Choose(std::initializer_list<std::string_view> lines) {
  const std::string_view codings[] = {"br", "gzip"};
  return choose_coding(Values(lines), codings, 2);
}

TEST(AcceptEncoding, PreferenceAndQValues) {
  EXPECT_EQ(Choose({}), -1) << "no Accept-Encoding: identity";
  EXPECT_EQ(Choose({""}), -1);
  EXPECT_EQ(Choose({"gzip, deflate, br"}), 0) << "ties go to the server's order";
  EXPECT_EQ(Choose({"gzip"}), 1);
  EXPECT_EQ(Choose({"x-gzip"}), 1);
  EXPECT_EQ(Choose({"br;q=0.5, gzip;q=0.8"}), 1);
  EXPECT_EQ(Choose({"br;q=0, gzip;q=0"}), -1);
  EXPECT_EQ(Choose({"*"}), 0);
  EXPECT_EQ(Choose({"*;q=0.1, br;q=0"}), 1);
  EXPECT_EQ(Choose({"identity"}), -1);
  EXPECT_EQ(Choose({"GZIP ; Q=1"}), 1);
  EXPECT_EQ(Choose({"deflate", "gzip"}), 1) << "several lines";
  EXPECT_EQ(Choose({"br;q=nonsense"}), -1) << "a malformed q is not acceptable";
}

// ---- MIME types ------------------------------------------------------------------

TEST(Mime, ModernTypesAndOverrides) {
  EXPECT_EQ(mime_type_for("wasm", ""), "application/wasm");
  EXPECT_EQ(mime_type_for("mjs", ""), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type_for("webp", ""), "image/webp");
  EXPECT_EQ(mime_type_for("avif", ""), "image/avif");
  EXPECT_EQ(mime_type_for("woff2", ""), "font/woff2");
  EXPECT_EQ(mime_type_for("json", ""), "application/json");
  EXPECT_EQ(mime_type_for("map", ""), "application/json");
  EXPECT_EQ(mime_type_for("HTML", ""), "text/html; charset=utf-8");
  EXPECT_EQ(mime_type_for("nope", ""), "application/octet-stream");
  EXPECT_EQ(mime_type_for("", ""), "application/octet-stream");
  EXPECT_EQ(mime_type_for("md", "md=text/x-md, txt = text/x-t"), "text/x-md");
  EXPECT_EQ(mime_type_for("TXT", "md=text/x-md, txt = text/x-t"), "text/x-t");
  EXPECT_EQ(mime_type_for("json", ".json=application/x-json"), "application/x-json");
  EXPECT_TRUE(valid_mime_overrides("a=b, c=d/e; charset=x,"));
  EXPECT_FALSE(valid_mime_overrides("a"));
  EXPECT_FALSE(valid_mime_overrides("=b"));
  EXPECT_FALSE(valid_mime_overrides("a=b\r\nX: y"));
}

TEST(Mime, ExtensionOfTheLastSegment) {
  EXPECT_EQ(extension_of("/a/b.tar.gz"), "gz");
  EXPECT_EQ(extension_of("/a.d/b"), "");
  EXPECT_EQ(extension_of("/a/.env"), "");
  EXPECT_EQ(extension_of("x.JS"), "JS");
}

// ---- paths and option lists --------------------------------------------------------

TEST(Paths, DecodeAndNormalise) {
  std::string d;
  ASSERT_TRUE(url_decode_path("/a%20b/%2e%2e/c+d", &d));
  EXPECT_EQ(d, "/a b/../c+d");
  EXPECT_FALSE(url_decode_path("/a%2", &d));
  EXPECT_FALSE(url_decode_path("/a%zz", &d));
  EXPECT_FALSE(url_decode_path("/a%00b", &d));
  std::string rel;
  bool dir = false;
  ASSERT_EQ(normalize_path("/a//b/./c/../d", &rel, &dir), PathCheck::kOk);
  EXPECT_EQ(rel, "a/b/d");
  EXPECT_FALSE(dir);
  ASSERT_EQ(normalize_path("/a/b/", &rel, &dir), PathCheck::kOk);
  EXPECT_EQ(rel, "a/b");
  EXPECT_TRUE(dir);
  ASSERT_EQ(normalize_path("/", &rel, &dir), PathCheck::kOk);
  EXPECT_EQ(rel, "");
  EXPECT_TRUE(dir);
  ASSERT_EQ(normalize_path("/a/..", &rel, &dir), PathCheck::kOk);
  EXPECT_EQ(rel, "");
  EXPECT_TRUE(dir);
  EXPECT_EQ(normalize_path("/../x", &rel, &dir), PathCheck::kEscapes);
  EXPECT_EQ(normalize_path("/a/../../x", &rel, &dir), PathCheck::kEscapes);
  EXPECT_EQ(normalize_path(std::string_view("/a\0b", 4), &rel, &dir), PathCheck::kBad);
}

TEST(Paths, DotfilesAndExtensions) {
  EXPECT_TRUE(has_dot_segment(".env"));
  EXPECT_TRUE(has_dot_segment("a/.git/config"));
  EXPECT_FALSE(has_dot_segment("a/b.c/d"));
  EXPECT_FALSE(has_dot_segment(""));
  EXPECT_TRUE(last_segment_has_dot("a/b.js"));
  EXPECT_FALSE(last_segment_has_dot("a.d/route"));
  EXPECT_FALSE(last_segment_has_dot(""));
}

TEST(Paths, GlobsAndCacheRules) {
  EXPECT_TRUE(glob_match("*.js", "/assets/app.js"));
  EXPECT_TRUE(glob_match("/assets/*", "/assets/x/y.css"));
  EXPECT_FALSE(glob_match("/assets/*", "/index.html"));
  EXPECT_TRUE(glob_match("*.[0-9a-f][0-9a-f].js", "/app.3f.js"));
  EXPECT_FALSE(glob_match("*.[0-9a-f][0-9a-f].js", "/app.zz.js"));
  EXPECT_TRUE(glob_match("*.[!h]*", "/a.css"));
  EXPECT_FALSE(glob_match("*.[!h]*", "/a.html"));
  EXPECT_TRUE(glob_match("/?.txt", "/a.txt"));
  EXPECT_TRUE(glob_match("/a\\*", "/a*"));
  EXPECT_FALSE(glob_match("/a\\*", "/ab"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("/[a", "/[a"));
  const std::string rules = "/assets/*\tpublic, max-age=31536000, immutable\n*.html\tno-cache";
  EXPECT_EQ(cache_control_for(rules, "/assets/app.js"), "public, max-age=31536000, immutable");
  EXPECT_EQ(cache_control_for(rules, "/index.html"), "no-cache");
  EXPECT_EQ(cache_control_for(rules, "/robots.txt"), "");
  EXPECT_TRUE(valid_cache_rules(rules));
  EXPECT_FALSE(valid_cache_rules("no tab"));
  EXPECT_FALSE(valid_cache_rules("*\tvalue\r\nX: y"));
  EXPECT_FALSE(valid_cache_rules("\tvalue"));
}

TEST(Paths, ListItems) {
  std::string seen;
  each_list_item(" index.html, ,index.htm ,", [&](std::string_view item) {
    seen.append(item.data(), item.size()).append("|");
    return false;
  });
  EXPECT_EQ(seen, "index.html|index.htm|");
  EXPECT_TRUE(valid_file_name("index.html"));
  EXPECT_FALSE(valid_file_name("a/b"));
  EXPECT_FALSE(valid_file_name(".."));
}

// ---- the open-file cache, on real files ----------------------------------------------

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mgffi-filecache.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    char *real = realpath(dir_.c_str(), nullptr);
    real_ = real;
    std::free(real);
    ASSERT_EQ(mkdir((dir_ + "/www").c_str(), 0755), 0);
    Write("www/a.txt", "hello");
    Write("secret.txt", "secret");
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  void Write(const std::string &rel, const std::string &data) {
    FILE *f = std::fopen((dir_ + "/" + rel).c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  }
  static int OpenFds() {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (readdir(d) != nullptr) n++;
    closedir(d);
    return n;
  }
  FileLookup Find(FileCache &cache, const std::string &rel, Symlinks s, std::uint64_t now) {
    const std::string path = dir_ + "/www/" + rel;
    return cache.lookup(std::to_string(static_cast<int>(s)) + path, path,
                        FileScope{real_ + "/www", rel, s}, now);
  }
  std::string dir_, real_;
};

TEST_F(FileCacheTest, KeepsFilesAndFailuresForValidMs) {
  FileCache cache;
  FileCache::Config config;
  config.valid_ms = 1000;
  cache.configure(config, 0);
  FileLookup a = Find(cache, "a.txt", Symlinks::kInside, 10);
  ASSERT_NE(a.file, nullptr);
  EXPECT_EQ(a.file->size, 5u);
  EXPECT_EQ(a.file->etag_view().front(), '"');
  EXPECT_EQ(Find(cache, "a.txt", Symlinks::kInside, 500).file, a.file) << "cached";
  FileLookup missing = Find(cache, "b.txt", Symlinks::kInside, 10);
  EXPECT_EQ(missing.file, nullptr);
  EXPECT_EQ(missing.error, ENOENT);
  Write("www/b.txt", "new");
  EXPECT_EQ(Find(cache, "b.txt", Symlinks::kInside, 500).file, nullptr) << "failure cached";
  EXPECT_NE(Find(cache, "b.txt", Symlinks::kInside, 1500).file, nullptr) << "checked again";
  // Unchanged after valid_ms: the same open file; changed: a new one.
  EXPECT_EQ(Find(cache, "a.txt", Symlinks::kInside, 1200).file, a.file);
  Write("www/a.txt", "hello, world");
  FileLookup a2 = Find(cache, "a.txt", Symlinks::kInside, 2500);
  ASSERT_NE(a2.file, nullptr);
  EXPECT_NE(a2.file, a.file);
  EXPECT_EQ(a2.file->size, 12u);
  EXPECT_NE(a2.file->etag_view(), a.file->etag_view());
}

TEST_F(FileCacheTest, RefusesLinksOutOfTheRootUnlessAllowed) {
  ASSERT_EQ(symlink((dir_ + "/secret.txt").c_str(), (dir_ + "/www/out.txt").c_str()), 0);
  ASSERT_EQ(symlink("a.txt", (dir_ + "/www/in.txt").c_str()), 0);
  FileCache cache;
  EXPECT_EQ(Find(cache, "out.txt", Symlinks::kInside, 0).file, nullptr);
  EXPECT_EQ(Find(cache, "out.txt", Symlinks::kInside, 0).error, ENOENT);
  EXPECT_NE(Find(cache, "out.txt", Symlinks::kAny, 0).file, nullptr);
  EXPECT_NE(Find(cache, "in.txt", Symlinks::kInside, 0).file, nullptr);
  EXPECT_EQ(Find(cache, "in.txt", Symlinks::kNone, 0).file, nullptr);
  EXPECT_NE(Find(cache, "a.txt", Symlinks::kNone, 0).file, nullptr);
  ASSERT_EQ(mkfifo((dir_ + "/www/fifo").c_str(), 0600), 0);
  EXPECT_EQ(Find(cache, "fifo", Symlinks::kInside, 0).file, nullptr) << "not a regular file";
}

TEST_F(FileCacheTest, BoundedAndClosesWhatItDrops) {
  for (int i = 0; i < 20; i++) Write("www/f" + std::to_string(i), "x");
  const int before = OpenFds();
  FileCache cache;
  FileCache::Config config;
  config.max_entries = 8;
  config.inactive_ms = 5000;
  cache.configure(config, 0);
  for (int i = 0; i < 20; i++) {
    ASSERT_NE(Find(cache, "f" + std::to_string(i), Symlinks::kInside, 100).file, nullptr);
  }
  EXPECT_EQ(cache.size(), 8u);
  EXPECT_EQ(OpenFds(), before + 8);
  cache.sweep(4000);
  EXPECT_EQ(cache.size(), 8u) << "used 3.9 s ago";
  cache.sweep(6000);
  EXPECT_EQ(cache.size(), 0u) << "inactive";
  EXPECT_EQ(OpenFds(), before);
  // No cache: nothing is kept once the caller lets go.
  config.max_entries = 0;
  cache.configure(config, 0);
  {
    FileLookup a = Find(cache, "a.txt", Symlinks::kInside, 0);
    EXPECT_EQ(OpenFds(), before + 1);
  }
  EXPECT_EQ(OpenFds(), before);
}

}  // namespace
}  // namespace mgffi
