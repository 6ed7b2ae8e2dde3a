// HTTP server tests, continued: streamed bodies with requests pipelined
// after them, answers to HEAD and HTTP/1.0, an upgrade with an empty key,
// request buffers given back.
#include <gtest/gtest.h>
#include <malloc.h>

#include <memory>
#include <string>
#include <vector>

#include "http_fixture.hpp"
#include "mongoose_ffi.h"
#include "test_support.hpp"

using mgtest::Client;
using mgtest::HttpResponse;
using mgtest::HttpTest;
using mgtest::Request;
using mgtest::Str;

namespace {

TEST_F(HttpTest, StreamedBodyFollowedByPipelinedRequestInOneWrite) {
  ASSERT_EQ(mgffi_set_limit(m, listener, MGFFI_LIMIT_STREAM_THRESHOLD, 1000), MGFFI_OK);
  const std::string body(3000, 'x');
  Client c(port);
  ASSERT_TRUE(c.Send(
      m, Request("POST", "/up", "Content-Length: 3000\r\n") + body + Request("GET", "/after")));
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_HTTP_BODY_END) == 1; }));
  const uint64_t conn = m.log()[m.FirstSeen(MGFFI_EV_HTTP_BODY_END)].conn_id;
  std::string got;
  for (const auto &e : m.log())
    if (e.type == MGFFI_EV_HTTP_BODY) got += e.data;
  EXPECT_EQ(got, body);  // the pipelined request is not part of the body
  m.PollTimes(5);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 0u);  // waits for the reply
  ASSERT_EQ(Reply(conn, 200, "up"), MGFFI_OK);
  const mgffi_event *ev = WaitRequest(conn);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->uri), "/after");
  ASSERT_EQ(Reply(conn, 200, "after"), MGFFI_OK);
  HttpResponse r1, r2;
  ASSERT_TRUE(c.ReadResponse(m, &r1));
  ASSERT_TRUE(c.ReadResponse(m, &r2));
  EXPECT_EQ(r1.body, "up");
  EXPECT_EQ(r2.body, "after");
}

// Regression: answering a streamed request before its body has fully
// arrived (e.g. refusing an upload early) must leave the connection able to
// take the next request once the body is consumed.
TEST_F(HttpTest, EarlyReplyToStreamedRequestThenNextRequest) {
  ASSERT_EQ(mgffi_set_limit(m, listener, MGFFI_LIMIT_STREAM_THRESHOLD, 1000), MGFFI_OK);
  Client c(port);
  ASSERT_TRUE(
      c.Send(m, Request("POST", "/up", "Content-Length: 5000\r\n") + std::string(100, 'x')));
  const mgffi_event *hdrs = m.PollFor(MGFFI_EV_HTTP_HDRS);
  ASSERT_NE(hdrs, nullptr);
  const uint64_t conn = hdrs->conn_id;
  HttpResponse r;
  ASSERT_TRUE(Answer(c, conn, 403, "no", &r));
  EXPECT_EQ(r.status, 403);
  // The client sends the rest of the body anyway, then another request.
  ASSERT_TRUE(c.Send(m, std::string(4900, 'x')));
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_HTTP_BODY_END, conn) == 1; }));
  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.response_pending, 0);
  ASSERT_TRUE(c.Send(m, Request("GET", "/next")));
  const mgffi_event *ev = m.PollFor(MGFFI_EV_HTTP_MSG, conn, 1000);
  ASSERT_NE(ev, nullptr) << "request after an early-answered streamed upload never arrives";
  EXPECT_EQ(Str(ev->http->uri), "/next");
  ASSERT_TRUE(Answer(c, conn, 200, "next", &r));
  EXPECT_EQ(r.body, "next");
}

TEST_F(HttpTest, ChunkedRequestBodyIsDecoded) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("POST", "/c", "Transfer-Encoding: chunked\r\n") +
                                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->body), "hello world");
  HttpResponse r;
  ASSERT_TRUE(Answer(c, ev->conn_id, 200, Str(ev->http->body), &r));
  EXPECT_EQ(r.body, "hello world");
}

TEST_F(HttpTest, MalformedRequestAfterPipelinedValidOne) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("GET", "/good") + "GARBAGE\r\n\r\n");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->uri), "/good");
  HttpResponse r;
  ASSERT_TRUE(Answer(c, ev->conn_id, 200, "good", &r));
  EXPECT_EQ(r.body, "good");
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.WaitEof(m));
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_REJECTED), 1u);
}

// An HTTP/1.0 "Connection: keep-alive" request is kept open, and the reply
// says so: otherwise the client must assume a close (RFC 7230 A.1.2).
TEST_F(HttpTest, Http10KeepAliveReplyAnnouncesKeepAlive) {
  Client c(port);
  const mgffi_event *ev = Ask(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_NE(ev, nullptr);
  HttpResponse r;
  ASSERT_TRUE(Answer(c, ev->conn_id, 200, "a", &r));
  EXPECT_EQ(mgtest::Lower(r.Header("Connection")), "keep-alive");
}

TEST_F(HttpTest, ChunkedReplyToHeadHasNoBody) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("HEAD", "/h"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  ASSERT_EQ(mgffi_http_begin_chunked(m, conn, 200, "", 0), MGFFI_OK);
  ASSERT_EQ(mgffi_http_write_chunk(m, conn, "abc", 3), MGFFI_OK);
  ASSERT_EQ(mgffi_http_end_chunked(m, conn), MGFFI_OK);
  ev = Ask(c, Request("GET", "/g"), conn);
  ASSERT_NE(ev, nullptr);
  ASSERT_EQ(Reply(conn, 200, "g"), MGFFI_OK);
  HttpResponse r;
  ASSERT_TRUE(c.ReadResponse(m, &r, true));
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.body, "g");
}

}  // namespace

// An upgrade request with an empty Sec-WebSocket-Key: Mongoose would hash
// the empty value and answer 101; the glue answers 400 and refuses.
TEST_F(HttpTest, WsUpgradeWithEmptyKeyGets400) {
  Client c(port);
  ASSERT_TRUE(c.Send(m,
                     "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key:\r\n\r\n"));
  const mgffi_event *ev = WaitRequest();
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(mgffi_ws_upgrade(m, ev->conn_id, nullptr, 0), MGFFI_ERR_STATE);
  EXPECT_NE(std::string(mgffi_last_error(m)).find("invalid Sec-WebSocket-Key"), std::string::npos);
  ASSERT_TRUE(
      c.ReadUntil(m, [](const std::string &b) { return b.find("\r\n\r\n") != std::string::npos; }));
  HttpResponse resp;
  ASSERT_GT(mgtest::ParseResponse(c.buffer(), false, &resp), 0);
  EXPECT_EQ(resp.status, 400);
}

// Connection states are recycled with their request buffer; one that held
// a large body must give it back, or memory stays at the peak of
// (connections x body size) for the life of the manager.
TEST_F(HttpTest, ClosedConnectionsGiveBackLargeRequestBuffers) {
  constexpr int kClients = 16;  // open at once: each needs a state of its own
  const std::string body(2 * 1024 * 1024, 'b');
  const std::string head =
      Request("POST", "/big", "Content-Length: " + std::to_string(body.size()) + "\r\n");
  // Heap in use, large (mmap-ed) blocks included.
  auto in_use = [] {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
  };
  m.PollTimes(3, 0);
  const std::size_t before = in_use();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(std::make_unique<Client>(port));
    ASSERT_TRUE(clients.back()->ok());
    ASSERT_TRUE(clients.back()->Send(m, head + body));
    const mgffi_event *ev = WaitRequest();
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(ev->http->body.len, body.size());
    ASSERT_EQ(Reply(ev->conn_id, 200, "ok"), MGFFI_OK);
  }
  for (auto &c : clients) {
    HttpResponse r;
    ASSERT_TRUE(c->ReadResponse(m, &r));
    c->Close();
  }
  ASSERT_TRUE(m.PollUntil([&] { return mgffi_connection_count(m) == 1; }));
  m.PollTimes(3, 0);  // closed states are recycled at the next poll
  const std::size_t after = in_use();
  // Without trimming: kClients x (a 4 MiB buffer) = 64 MiB more.
  EXPECT_LT(after, before + 8u * 1024 * 1024) << "before " << before << ", after " << after;
}
