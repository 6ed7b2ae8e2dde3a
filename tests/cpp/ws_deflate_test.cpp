// Unit tests of permessage-deflate (src/ws_deflate.cpp): the negotiation of
// RFC 7692's parameters, both sides, and the zlib streams (round trips,
// the removed 00 00 ff ff tail, context kept or reset, a bomb refused).
#include "ws_deflate.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mgffi {
namespace {

std::string Negotiate(const std::string &offers, const DeflateConfig &config,
                      DeflateParams *params) {
  std::string response;
  if (!negotiate_deflate(mg_str_n(offers.data(), offers.size()), config, params, &response)) {
    return "<declined>";
  }
  return response;
}

DeflateConfig On() {
  DeflateConfig c;
  c.enabled = true;
  return c;
}

TEST(DeflateNegotiation, ServerAnswersWithoutContextTakeoverByDefault) {
  DeflateParams p;
  EXPECT_EQ(Negotiate("permessage-deflate; client_max_window_bits", On(), &p),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_TRUE(p.active);
  EXPECT_TRUE(p.our_no_context);
  EXPECT_TRUE(p.peer_no_context);
  EXPECT_EQ(p.our_window_bits, 15);
}

TEST(DeflateNegotiation, ContextTakeoverWhenAllowed) {
  DeflateConfig c = On();
  c.context_takeover = true;
  DeflateParams p;
  EXPECT_EQ(Negotiate("permessage-deflate", c, &p), "permessage-deflate");
  EXPECT_FALSE(p.our_no_context);
  EXPECT_FALSE(p.peer_no_context);
  EXPECT_EQ(Negotiate("permessage-deflate; server_no_context_takeover", c, &p),
            "permessage-deflate; server_no_context_takeover");
  EXPECT_TRUE(p.our_no_context);
}

TEST(DeflateNegotiation, WindowBitsAndTheFirstAcceptableOffer) {
  DeflateParams p;
  EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=10", On(), &p),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10");
  EXPECT_EQ(p.our_window_bits, 10);
  // 8 bits: zlib's raw deflate cannot; the next offer is taken.
  EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=8, permessage-deflate", On(), &p),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(p.our_window_bits, 15);
}

TEST(DeflateNegotiation, BadOffersAreDeclined) {
  DeflateParams p;
  for (const char *bad :
       {"permessage-deflate; foo", "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "x-webkit-deflate-frame", ""}) {
    EXPECT_EQ(Negotiate(bad, On(), &p), "<declined>") << bad;
  }
  EXPECT_EQ(Negotiate("permessage-deflate", DeflateConfig(), &p), "<declined>");  // off
}

TEST(DeflateNegotiation, ClientSide) {
  DeflateConfig c = On();
  EXPECT_EQ(deflate_offer(c),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover; "
            "client_no_context_takeover");
  DeflateParams p;
  EXPECT_TRUE(accept_deflate_response(mg_str(""), c, &p));
  EXPECT_FALSE(p.active);
  EXPECT_TRUE(accept_deflate_response(
      mg_str("permessage-deflate; server_no_context_takeover; client_max_window_bits=12"), c, &p));
  EXPECT_TRUE(p.active);
  EXPECT_TRUE(p.peer_no_context);
  EXPECT_EQ(p.our_window_bits, 12);
  EXPECT_FALSE(
      accept_deflate_response(mg_str("permessage-deflate; client_max_window_bits=8"), c, &p));
  EXPECT_FALSE(accept_deflate_response(mg_str("x-other"), c, &p));
  EXPECT_FALSE(accept_deflate_response(mg_str("permessage-deflate, permessage-deflate"), c, &p));
  EXPECT_FALSE(accept_deflate_response(mg_str("permessage-deflate"), DeflateConfig(), &p));
}

std::string Compress(Deflater &d, const std::string &in, bool reset) {
  ByteBuffer out;
  EXPECT_TRUE(d.compress(in.data(), in.size(), &out, reset));
  return std::string(out.data(), out.size());
}

std::string Inflate(Inflater &i, const std::string &in, Inflater::Status *status,
                    std::uint64_t limit = 0, bool reset = true) {
  ByteBuffer out;
  *status = i.inflate(in.data(), in.size(), &out, limit, reset);
  return std::string(out.data(), out.size());
}

TEST(DeflateStreams, RoundTripsWithoutTheTail) {
  Deflater d(1, 15);
  Inflater i;
  ASSERT_TRUE(d.ok() && i.ok());
  const std::string msg(100000, 'a');
  const std::string z = Compress(d, msg, true);
  EXPECT_LT(z.size(), 1000u);
  EXPECT_NE(z.substr(z.size() - 4), std::string("\x00\x00\xff\xff", 4));
  Inflater::Status st;
  EXPECT_EQ(Inflate(i, z, &st), msg);
  EXPECT_EQ(st, Inflater::kOk);
  // RFC 7692 7.2.3.1's example: "Hello" compressed.
  EXPECT_EQ(Inflate(i, std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7), &st), "Hello");
}

TEST(DeflateStreams, ContextTakeoverMakesTheSecondMessageSmaller) {
  Deflater keep(6, 15), reset(6, 15);
  Inflater i;
  const std::string msg = "a message that repeats a message that repeats";
  const std::string first = Compress(keep, msg, false);
  const std::string second = Compress(keep, msg, false);
  EXPECT_LT(second.size(), first.size());
  Inflater::Status st;
  EXPECT_EQ(Inflate(i, first, &st, 0, false), msg);
  EXPECT_EQ(Inflate(i, second, &st, 0, false), msg);  // needs the first one's context
  EXPECT_EQ(Compress(reset, msg, true), Compress(reset, msg, true));
}

TEST(DeflateStreams, ABombStopsAtTheLimitAndCorruptDataIsRefused) {
  Deflater d(9, 15);
  Inflater i;
  const std::string bomb = Compress(d, std::string(16 * 1024 * 1024, '\0'), true);
  EXPECT_LT(bomb.size(), 64 * 1024u);
  Inflater::Status st;
  const std::string out = Inflate(i, bomb, &st, 1024 * 1024);
  EXPECT_EQ(st, Inflater::kTooBig);
  EXPECT_LE(out.size(), 1024u * 1024 + 16384);
  Inflate(i, "\xff\xff\xff garbage", &st);
  EXPECT_EQ(st, Inflater::kCorrupt);
  EXPECT_EQ(Inflate(i, Compress(d, "after", true), &st), "after");  // usable again
  // A stream that keeps its context (a shared one's next user) is reset by
  // any failure too: the bomb stopped mid-message, then corrupt data.
  Inflate(i, bomb, &st, 1024 * 1024, false);
  EXPECT_EQ(st, Inflater::kTooBig);
  EXPECT_EQ(Inflate(i, Compress(d, "next", true), &st, 0, false), "next");
  EXPECT_EQ(st, Inflater::kOk);
  Inflate(i, "\xff\xff\xff garbage", &st, 0, false);
  EXPECT_EQ(st, Inflater::kCorrupt);
  EXPECT_EQ(Inflate(i, Compress(d, "again", true), &st, 0, false), "again");
}

}  // namespace
}  // namespace mgffi
