// Unit tests of the pure HTTP pieces (src/http_parse.cpp), linked directly:
// the end-of-head scanner, the request checks, the chunked-body decoder and
// the Connection header finder of replies.
#include "http_parse.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mgffi {
namespace {

long HeadEnd(const std::string &s, std::size_t *scanned) {
  return find_head_end(reinterpret_cast<const unsigned char *>(s.data()), s.size(), scanned);
}

TEST(HeadEnd, FindsTheBlankLineWithCrlfOrLf) {
  std::size_t scanned = 0;
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", &scanned), 27);
  scanned = 0;
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\nHost: x\n\n", &scanned), 24);
}

TEST(HeadEnd, ResumesWhereItStoppedOneByteAtATime) {
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n";
  std::size_t scanned = 0;
  for (std::size_t n = 1; n < head.size(); n++) {
    EXPECT_EQ(HeadEnd(head.substr(0, n), &scanned), 0) << n;
    EXPECT_EQ(scanned, n);
  }
  EXPECT_EQ(HeadEnd(head, &scanned), static_cast<long>(head.size()));
}

TEST(HeadEnd, RefusesControlBytes) {
  std::size_t scanned = 0;
  EXPECT_EQ(HeadEnd(std::string("GET /\0 HTTP/1.1\r\n\r\n", 20), &scanned), -1);
  scanned = 0;
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\r\nX: \x01\r\n\r\n", &scanned), -1);
}

HeadVerdict Check(const std::string &head) {
  mg_http_message hm;
  EXPECT_GT(mg_http_parse(head.data(), head.size(), &hm), 0) << head;
  return check_request_head(hm);
}

TEST(RequestHead, AcceptsOrdinaryRequests) {
  EXPECT_EQ(Check("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 0);
  EXPECT_EQ(Check("GET / HTTP/1.0\r\n\r\n").status, 0);  // HTTP/1.0 needs no Host
  EXPECT_EQ(Check("M-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n").status, 0);
}

TEST(RequestHead, RefusesWhatRfc9112Forbids) {
  EXPECT_EQ(Check("G@T / HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);
  EXPECT_EQ(Check("GET / HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Check("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);
  EXPECT_EQ(Check("GET / HTTP/1.7\r\nHost: x\r\n\r\n").status, 505);
  EXPECT_EQ(Check("GET / HTTP/2.0\r\nHost: x\r\n\r\n").status, 505);
  EXPECT_EQ(Check("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status, 400);
}

TEST(ContentLength, DigitsOnlySaturating) {
  std::uint64_t n = 0;
  EXPECT_TRUE(parse_content_length(mg_str("0"), &n));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(parse_content_length(mg_str("8388608"), &n));
  EXPECT_EQ(n, 8388608u);
  EXPECT_TRUE(parse_content_length(mg_str("99999999999999999999999"), &n));
  EXPECT_EQ(n, UINT64_MAX);
  EXPECT_FALSE(parse_content_length(mg_str(""), &n));
  EXPECT_FALSE(parse_content_length(mg_str("-1"), &n));
  EXPECT_FALSE(parse_content_length(mg_str("1 2"), &n));
}

// Collects what a decoder hands on.
struct Collect : ChunkDecoder::Sink {
  std::string body, trailers;
  std::size_t limit = SIZE_MAX;
  bool data(const char *p, std::size_t n) override {
    body.append(p, n);
    return body.size() <= limit;
  }
  bool trailer(const char *p, std::size_t n) override {
    trailers.append(p, n);
    return true;
  }
};

ChunkDecoder::Status Decode(const std::string &body, Collect *out, std::size_t *used,
                            ChunkDecoder *dec) {
  return dec->feed(body.data(), body.size(), *out, used);
}

TEST(Chunks, DecodesAWholeBodyAndStopsAtItsEnd) {
  ChunkDecoder dec;
  Collect out;
  std::size_t used = 0;
  const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /next";
  EXPECT_EQ(Decode(body, &out, &used, &dec), ChunkDecoder::kDone);
  EXPECT_EQ(out.body, "hello world");
  EXPECT_EQ(used, body.size() - 9);  // the pipelined request is left
  EXPECT_TRUE(dec.done());
}

TEST(Chunks, AnySplitGivesTheSameResult) {
  const std::string body = "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: v\r\n\r\n";
  for (std::size_t cut = 1; cut < body.size(); cut++) {
    ChunkDecoder dec;
    Collect out;
    std::size_t used = 0;
    EXPECT_EQ(Decode(body.substr(0, cut), &out, &used, &dec), ChunkDecoder::kNeedMore) << cut;
    EXPECT_EQ(used, cut);
    EXPECT_EQ(Decode(body.substr(cut), &out, &used, &dec), ChunkDecoder::kDone) << cut;
    EXPECT_EQ(out.body, "abc0123456789abcdef") << cut;
    EXPECT_EQ(out.trailers, "X-T: v\r\n") << cut;
  }
}

TEST(Chunks, RefusesBrokenFraming) {
  for (const char *bad :
       {"-5\r\nhello\r\n", "zz\r\n", "5\nhello\r\n", "3\r\nhello\r\n", "10000000000000005\r\n",
        "80000000\r\n", "3 \r\nabc\r\n", "3\r\nabc\r\n0\r\n bad\r\n\r\n"}) {
    ChunkDecoder dec;
    Collect out;
    std::size_t used = 0;
    EXPECT_EQ(Decode(bad, &out, &used, &dec), ChunkDecoder::kError) << bad;
  }
}

TEST(Chunks, ASinkRefusalStopsIt) {
  ChunkDecoder dec;
  Collect out;
  out.limit = 4;
  std::size_t used = 0;
  EXPECT_EQ(Decode("5\r\nhello\r\n0\r\n\r\n", &out, &used, &dec), ChunkDecoder::kError);
}

TEST(ConnectionHeader, FindsCloseAmongTheLines) {
  const std::string h = "X-A: 1\r\nconnection:  Close \r\nX-B: 2\r\n";
  ConnectionHeader c = find_connection_header(h.data(), h.size());
  EXPECT_TRUE(c.present);
  EXPECT_TRUE(c.close);
  const std::string k = "Connection: keep-alive\r\n";
  c = find_connection_header(k.data(), k.size());
  EXPECT_TRUE(c.present);
  EXPECT_FALSE(c.close);
  c = find_connection_header("", 0);
  EXPECT_FALSE(c.present);
}

}  // namespace
}  // namespace mgffi
