// Unit tests of the pure WebSocket pieces (src/ws_frame.cpp), linked
// directly: the frame header writer, unmasking, the UTF-8 validator, close
// codes, and WsReceiver's rules (RFC 6455).
#include "ws_frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mgffi {
namespace {

const unsigned char kMask[4] = {0x11, 0x22, 0x33, 0x44};

// A frame as a client sends it (masked unless masked is false).
std::string Frame(int op, const std::string &payload, bool fin = true, bool masked = true,
                  unsigned char extra_bits = 0) {
  unsigned char header[14];
  std::size_t n = ws_write_header(header, payload.size(), op, fin, false, masked ? kMask : nullptr);
  header[0] |= extra_bits;
  std::string f(reinterpret_cast<char *>(header), n);
  std::string p = payload;
  if (masked) {
    ws_unmask(reinterpret_cast<unsigned char *>(&p[0]), p.size(), kMask, 0);
  }
  return f + p;
}

struct Seen : WsReceiver::Sink {
  std::vector<std::pair<int, std::string>> messages, controls;
  void message(unsigned char first, const unsigned char *p, std::size_t n) override {
    messages.emplace_back(first & 15, std::string(reinterpret_cast<const char *>(p), n));
  }
  void control(unsigned char first, const unsigned char *p, std::size_t n) override {
    controls.emplace_back(first & 15, std::string(reinterpret_cast<const char *>(p), n));
  }
};

// Feeds bytes to a server-side receiver; returns it for inspection.
struct Feed {
  WsReceiver rx;
  Seen seen;
  std::string rest;
  explicit Feed(std::uint64_t max_message = 0) {
    WsReceiver::Config config;
    config.max_message = max_message;
    rx.configure(config);
  }
  void operator()(const std::string &bytes) {
    rest += bytes;
    std::size_t used = rx.feed(reinterpret_cast<unsigned char *>(&rest[0]), rest.size(), seen);
    rest.erase(0, used);
  }
};

TEST(WsHeader, LengthForms) {
  unsigned char h[14];
  EXPECT_EQ(ws_write_header(h, 125, kWsText, true, false, nullptr), 2u);
  EXPECT_EQ(h[0], 0x81);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(ws_write_header(h, 126, kWsBinary, false, false, nullptr), 4u);
  EXPECT_EQ(h[0], 0x02);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ(ws_write_header(h, 70000, kWsBinary, true, true, kMask), 14u);
  EXPECT_EQ(h[0], 0xC2);  // FIN and RSV1
  EXPECT_EQ(h[1], 0x80 | 127);
  EXPECT_EQ(h[10], kMask[0]);
}

TEST(Utf8, ValidAndInvalidForms) {
  auto valid = [](const std::string &s) {
    Utf8Validator v;
    return v.feed(reinterpret_cast<const unsigned char *>(s.data()), s.size()) && v.complete();
  };
  EXPECT_TRUE(valid("hello"));
  EXPECT_TRUE(valid("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));  // Greek
  EXPECT_TRUE(valid("\xf4\x8f\xbf\xbf"));                              // U+10FFFF
  EXPECT_FALSE(valid("\xc0\xaf"));                                     // overlong '/'
  EXPECT_FALSE(valid("\xe0\x80\xaf"));                                 // overlong
  EXPECT_FALSE(valid("\xed\xa0\x80"));                                 // a surrogate
  EXPECT_FALSE(valid("\xf4\x90\x80\x80"));                             // above U+10FFFF
  EXPECT_FALSE(valid("\xce"));                                         // cut short
  // Across pieces: a sequence split between two feeds.
  Utf8Validator v;
  EXPECT_TRUE(v.feed(reinterpret_cast<const unsigned char *>("\xe2\x82"), 2));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed(reinterpret_cast<const unsigned char *>("\xac"), 1));
  EXPECT_TRUE(v.complete());
}

TEST(CloseCodes, TheOnesAPeerMaySend) {
  for (unsigned ok : {1000u, 1001u, 1002u, 1003u, 1007u, 1011u, 1012u, 1014u, 3000u, 4999u}) {
    EXPECT_TRUE(ws_close_code_valid(ok)) << ok;
  }
  for (unsigned bad : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u}) {
    EXPECT_FALSE(ws_close_code_valid(bad)) << bad;
  }
}

TEST(Receiver, WholeAndFragmentedMessagesAndInterleavedControls) {
  Feed f;
  f(Frame(kWsText, "hello"));
  f(Frame(kWsText, "frag", false) + Frame(kWsPing, "p") + Frame(kWsContinuation, "mented"));
  ASSERT_EQ(f.seen.messages.size(), 2u);
  EXPECT_EQ(f.seen.messages[0].second, "hello");
  EXPECT_EQ(f.seen.messages[1].second, "fragmented");
  ASSERT_EQ(f.seen.controls.size(), 1u);
  EXPECT_EQ(f.seen.controls[0].first, kWsPing);
  EXPECT_EQ(f.rx.status(), WsReceiver::kOk);
}

TEST(Receiver, AnySplitGivesTheSameMessages) {
  const std::string bytes = Frame(kWsBinary, std::string(300, 'b')) + Frame(kWsText, "x", false) +
                            Frame(kWsContinuation, "yz");
  for (std::size_t cut = 1; cut < bytes.size(); cut++) {
    Feed f;
    f(bytes.substr(0, cut));
    f(bytes.substr(cut));
    ASSERT_EQ(f.seen.messages.size(), 2u) << cut;
    EXPECT_EQ(f.seen.messages[0].second, std::string(300, 'b'));
    EXPECT_EQ(f.seen.messages[1].second, "xyz");
  }
}

// Each rule breaks the connection with the RFC's close code.
void ExpectFail(const std::string &bytes, unsigned code, std::uint64_t max_message = 0) {
  Feed f(max_message);
  f(bytes);
  EXPECT_EQ(f.rx.status(), WsReceiver::kFailed) << f.rx.reason();
  EXPECT_EQ(f.rx.code(), code) << f.rx.reason();
}

TEST(Receiver, ProtocolErrors) {
  ExpectFail(Frame(kWsText, "a", true, true, 0x40), 1002);             // RSV1, no extension
  ExpectFail(Frame(kWsText, "a", true, true, 0x20), 1002);             // RSV2
  ExpectFail(Frame(3, "a"), 1002);                                     // reserved opcode
  ExpectFail(Frame(kWsPing, "a", false), 1002);                        // fragmented control
  ExpectFail(Frame(kWsPing, std::string(126, 'p')), 1002);             // control over 125
  ExpectFail(Frame(kWsContinuation, "a"), 1002);                       // nothing to continue
  ExpectFail(Frame(kWsText, "a", false) + Frame(kWsText, "b"), 1002);  // a new start
  ExpectFail(Frame(kWsText, "a", true, false), 1002);                  // unmasked from a client
  ExpectFail(Frame(kWsClose, "x"), 1002);                              // 1-byte close
  ExpectFail(Frame(kWsClose, std::string("\x03\xec", 2)), 1002);       // code 1004
  ExpectFail(Frame(kWsClose, std::string("\x03\xe8\xff", 3)), 1007);   // bad reason
  ExpectFail(Frame(kWsText, "\xce\xba\xff"), 1007);                    // bad UTF-8
  ExpectFail(Frame(kWsBinary, std::string(2000, 'x')), 1009, 1000);    // too big
}

TEST(Receiver, BadUtf8FailsBeforeTheFrameEnds) {
  Feed f;
  const std::string frame = Frame(kWsText, "ok\xff" + std::string(1000, 'a'));
  f(frame.substr(0, 20));  // the bad byte has arrived, the rest has not
  EXPECT_EQ(f.rx.status(), WsReceiver::kFailed);
  EXPECT_EQ(f.rx.code(), 1007u);
}

TEST(Receiver, TooBigIsRefusedWhenAnnouncedBeforeTheMask) {
  Feed f(1000);
  const std::string frame = Frame(kWsBinary, std::string(70000, 'x'));
  f(frame.substr(0, 10));  // header and length only: no mask yet
  EXPECT_EQ(f.rx.status(), WsReceiver::kFailed);
  EXPECT_EQ(f.rx.code(), 1009u);
}

TEST(Receiver, DataAfterCloseIsIgnored) {
  Feed f;
  f(Frame(kWsClose, std::string("\x03\xe8", 2)) + Frame(kWsText, "late"));
  EXPECT_EQ(f.rx.status(), WsReceiver::kClosed);
  EXPECT_TRUE(f.seen.messages.empty());
  ASSERT_EQ(f.seen.controls.size(), 1u);
  EXPECT_EQ(f.seen.controls[0].first, kWsClose);
}

TEST(Receiver, ServerFramesAreUnmaskedOnAClient) {
  WsReceiver rx;
  WsReceiver::Config config;
  config.expect_masked = false;
  rx.configure(config);
  Seen seen;
  std::string bytes = Frame(kWsText, "hi", true, false);
  rx.feed(reinterpret_cast<unsigned char *>(&bytes[0]), bytes.size(), seen);
  ASSERT_EQ(seen.messages.size(), 1u);
  EXPECT_EQ(seen.messages[0].second, "hi");
  std::string masked = Frame(kWsText, "hi");
  rx.feed(reinterpret_cast<unsigned char *>(&masked[0]), masked.size(), seen);
  EXPECT_EQ(rx.status(), WsReceiver::kFailed);
}

}  // namespace
}  // namespace mgffi
