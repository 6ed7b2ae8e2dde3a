// HTTP server tests: a listener on the manager, POSIX sockets as clients.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "http_fixture.hpp"
#include "mongoose_ffi.h"
#include "test_support.hpp"

using mgtest::Client;
using mgtest::HttpResponse;
using mgtest::HttpTest;
using mgtest::Manager;
using mgtest::Request;
using mgtest::Str;

namespace {

std::string HeaderValue(const mgffi_http_message *hm, const char *name) {
  for (uint32_t i = 0; i < hm->header_count; i++) {
    if (mgtest::Lower(Str(hm->headers[i].name)) == mgtest::Lower(name)) {
      return Str(hm->headers[i].value);
    }
  }
  return "<missing>";
}

TEST_F(HttpTest, GetWithQueryAndHeadersYieldsOneMessage) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  const std::string req =
      "GET /path/to/thing?a=1&b=two%20x HTTP/1.1\r\n"
      "Host: example.test\r\n"
      "X-Custom: hello world\r\n"
      "Accept: */*\r\n"
      "\r\n";
  const mgffi_event *ev = Ask(c, req);
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  EXPECT_NE(conn, listener);
  EXPECT_EQ(ev->listener_id, listener);
  EXPECT_TRUE(ev->flags & MGFFI_F_ACCEPTED);
  EXPECT_FALSE(ev->flags & MGFFI_F_LISTENER);
  EXPECT_EQ(ev->remote.ip[0], 127);
  EXPECT_EQ(ev->remote.port, c.local_port());
  const mgffi_http_message *hm = ev->http;
  EXPECT_EQ(Str(hm->method), "GET");
  EXPECT_EQ(Str(hm->uri), "/path/to/thing");
  EXPECT_EQ(Str(hm->query), "a=1&b=two%20x");
  EXPECT_EQ(Str(hm->proto), "HTTP/1.1");
  EXPECT_EQ(Str(hm->body), "");
  EXPECT_EQ(hm->content_length, 0u);
  EXPECT_EQ(hm->status, 0);
  EXPECT_EQ(hm->header_count, 3u);
  EXPECT_EQ(HeaderValue(hm, "Host"), "example.test");
  EXPECT_EQ(HeaderValue(hm, "x-custom"), "hello world");
  EXPECT_EQ(HeaderValue(hm, "Accept"), "*/*");
  // head: the request line and headers, as received.
  EXPECT_EQ(Str(hm->head).substr(0, 40), req.substr(0, 40));
  EXPECT_NE(Str(hm->head).find("X-Custom: hello world"), std::string::npos);

  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.response_pending, 1);
  EXPECT_EQ(info.listener_id, listener);
  EXPECT_TRUE(info.flags & MGFFI_F_ACCEPTED);

  const std::string body = "hello, client";
  const std::string headers = "Content-Type: text/plain\r\nX-Reply: yes\r\n";
  ASSERT_EQ(Reply(conn, 200, body, headers), MGFFI_OK);
  // A second reply to the same request is a state error.
  EXPECT_EQ(Reply(conn, 200, "again"), MGFFI_ERR_STATE);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(mgffi_http_begin_chunked(m, conn, 200, "", 0), MGFFI_ERR_STATE);

  HttpResponse r;
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.Header("Content-Type"), "text/plain");
  EXPECT_EQ(r.Header("X-Reply"), "yes");
  EXPECT_TRUE(r.has_content_length);
  EXPECT_EQ(r.content_length, body.size());
  EXPECT_EQ(r.body, body);
  EXPECT_FALSE(r.HasHeader("Connection"));
  // Nothing else was sent, and only one request event was queued.
  m.PollTimes(5);
  c.Pump();
  EXPECT_EQ(c.buffer(), "");
  EXPECT_FALSE(c.eof());
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 1u);
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.response_pending, 0);
}

TEST_F(HttpTest, PostBodyAndStatusText) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  const mgffi_event *ev =
      Ask(c, Request("POST", "/submit", "Content-Length: 11\r\n") + "hello=world");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->method), "POST");
  EXPECT_EQ(Str(ev->http->body), "hello=world");
  EXPECT_EQ(ev->http->content_length, 11u);
  HttpResponse r;
  ASSERT_TRUE(Answer(c, ev->conn_id, 404, "nope", &r));
  EXPECT_EQ(r.status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(r.body, "nope");
  EXPECT_EQ(r.content_length, 4u);
}

TEST_F(HttpTest, EmptyBodyReplyHasContentLengthZero) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("GET", "/empty"));
  ASSERT_NE(ev, nullptr);
  ASSERT_EQ(mgffi_http_reply(m, ev->conn_id, 200, nullptr, 0, nullptr, 0), MGFFI_OK);
  HttpResponse r;
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Length"), "0");
}

// RFC 9110 8.6: no Content-Length in a 204 or 304 (nor a 1xx), and no body.
TEST_F(HttpTest, NoContentRepliesHaveNoContentLength) {
  Client c(port);
  for (int status : {204, 304}) {
    const mgffi_event *ev = Ask(c, Request("GET", "/empty"));
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(mgffi_http_reply(m, ev->conn_id, status, nullptr, 0, "x", 1), MGFFI_ERR_ARG);
    EXPECT_EQ(mgffi_http_begin_chunked(m, ev->conn_id, status, nullptr, 0), MGFFI_ERR_ARG);
    ASSERT_EQ(mgffi_http_reply(m, ev->conn_id, status, nullptr, 0, nullptr, 0), MGFFI_OK);
    ASSERT_TRUE(c.ReadUntil(
        m, [](const std::string &b) { return b.find("\r\n\r\n") != std::string::npos; }));
    const std::string head = c.buffer().substr(0, c.buffer().find("\r\n\r\n") + 4);
    EXPECT_EQ(head.find("HTTP/1.1 " + std::to_string(status)), 0u) << head;
    EXPECT_EQ(mgtest::Lower(head).find("content-length"), std::string::npos) << head;
    c.buffer().erase(0, head.size());
  }
  // A 1xx cannot end a request.
  const mgffi_event *ev = Ask(c, Request("GET", "/empty"));
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(mgffi_http_reply(m, ev->conn_id, 101, nullptr, 0, nullptr, 0), MGFFI_ERR_ARG);
}

TEST_F(HttpTest, DeferredReplyKeepsRequestViews) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      c.Send(m, Request("PUT", "/later?x=1", "Content-Length: 4\r\nX-Id: 42\r\n") + "data"));
  const mgffi_event *ev = WaitRequest();
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  // The request view outlives this poll until the poll after the reply.
  const mgffi_http_message *hm = ev->http;
  for (int i = 0; i < 8; i++) {
    m.Poll(10);
    c.Pump();
    ASSERT_EQ(Str(hm->method), "PUT") << "poll " << i;
    ASSERT_EQ(Str(hm->uri), "/later");
    ASSERT_EQ(Str(hm->query), "x=1");
    ASSERT_EQ(Str(hm->body), "data");
    ASSERT_EQ(HeaderValue(hm, "X-Id"), "42");
  }
  EXPECT_EQ(c.buffer(), "");  // nothing answered yet
  EXPECT_FALSE(c.eof());
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 1u);
  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.response_pending, 1);

  // Build the reply from the (still valid) request.
  std::string body = Str(hm->method) + " " + Str(hm->uri) + " " + Str(hm->body);
  ASSERT_EQ(Reply(conn, 200, body), MGFFI_OK);
  EXPECT_EQ(Str(hm->uri), "/later");  // still valid until the next poll
  HttpResponse r;
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "PUT /later data");
}

TEST_F(HttpTest, PipelinedRequestsDeliveredOneAtATime) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  const mgffi_event *ev = Ask(c, Request("GET", "/first") + Request("GET", "/second"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  EXPECT_EQ(Str(ev->http->uri), "/first");
  const mgffi_http_message *first = ev->http;
  // The second waits for the first's answer.
  m.PollTimes(10);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 1u);
  EXPECT_EQ(Str(first->uri), "/first");
  ASSERT_EQ(Reply(conn, 200, "one"), MGFFI_OK);

  ev = WaitRequest(conn);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->uri), "/second");
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 2u);
  ASSERT_EQ(Reply(conn, 200, "two"), MGFFI_OK);

  HttpResponse r1, r2;
  ASSERT_TRUE(c.ReadResponse(m, &r1));
  ASSERT_TRUE(c.ReadResponse(m, &r2));
  EXPECT_EQ(r1.body, "one");
  EXPECT_EQ(r2.body, "two");
  m.PollTimes(5);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 2u);
}

TEST_F(HttpTest, PipelinedThreeWithDeferredReplies) {
  Client c(port);
  ASSERT_TRUE(c.Send(m, Request("GET", "/1") + Request("GET", "/2") + Request("GET", "/3")));
  uint64_t conn = 0;
  for (int i = 1; i <= 3; i++) {
    const mgffi_event *ev = WaitRequest(conn);
    ASSERT_NE(ev, nullptr);
    conn = ev->conn_id;
    ASSERT_EQ(Str(ev->http->uri), "/" + std::to_string(i));
    m.PollTimes(3);  // defer
    EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), static_cast<size_t>(i));
    ASSERT_EQ(Reply(conn, 200, "r" + std::to_string(i)), MGFFI_OK);
  }
  for (int i = 1; i <= 3; i++) {
    HttpResponse r;
    ASSERT_TRUE(c.ReadResponse(m, &r));
    EXPECT_EQ(r.body, "r" + std::to_string(i));
  }
}

TEST_F(HttpTest, KeepAliveThenConnectionClose) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  uint64_t conns[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    RoundTrip(c, "/req" + std::to_string(i), &conns[i]);
    if (HasFatalFailure()) return;
    EXPECT_FALSE(c.eof());
  }
  EXPECT_EQ(conns[0], conns[1]);
  EXPECT_EQ(conns[1], conns[2]);

  const mgffi_event *ev = Ask(c, Request("GET", "/bye", "Connection: close\r\n"));
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->conn_id, conns[0]);
  HttpResponse r;
  ASSERT_TRUE(Answer(c, ev->conn_id, 200, "bye", &r));
  EXPECT_EQ(r.body, "bye");
  EXPECT_EQ(mgtest::Lower(r.Header("Connection")), "close");
  EXPECT_TRUE(c.WaitEof(m));
  EXPECT_EQ(c.buffer(), "");
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CLOSE, conns[0]) == 1; }));
}

TEST_F(HttpTest, Http10WithoutKeepAliveCloses) {
  Client c(port);
  const mgffi_event *ev = Ask(c, "GET /old HTTP/1.0\r\n\r\n");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->proto), "HTTP/1.0");
  ASSERT_TRUE(Served(c, ev->conn_id, 200, "old"));
  EXPECT_TRUE(c.WaitEof(m));
}

TEST_F(HttpTest, Http10WithKeepAliveStaysOpen) {
  Client c(port);
  const mgffi_event *ev = Ask(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  HttpResponse r;
  ASSERT_TRUE(Answer(c, conn, 200, "a", &r));
  EXPECT_EQ(r.body, "a");
  m.PollTimes(5);
  c.Pump();
  EXPECT_FALSE(c.eof());
  ev = Ask(c, "GET /b HTTP/1.0\r\n\r\n", conn);
  ASSERT_NE(ev, nullptr);
  ASSERT_TRUE(Served(c, conn, 200, "b"));
  EXPECT_TRUE(c.WaitEof(m));
}

TEST_F(HttpTest, HeadGetsHeadersWithoutBody) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("HEAD", "/thing"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  EXPECT_EQ(Str(ev->http->method), "HEAD");
  ASSERT_EQ(Reply(conn, 200, "twelve bytes"), MGFFI_OK);
  // Read up to the end of the head, then follow with a GET on the same
  // connection: the next bytes must be the GET's response, not a body.
  ASSERT_TRUE(
      c.ReadUntil(m, [](const std::string &b) { return b.find("\r\n\r\n") != std::string::npos; }));
  HttpResponse head;
  long n = mgtest::ParseResponse(c.buffer(), true, &head);
  ASSERT_GT(n, 0);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), "12");
  m.PollTimes(5);
  c.Pump();
  EXPECT_EQ(c.buffer().size(), static_cast<size_t>(n)) << "HEAD response carried a body";
  c.buffer().erase(0, static_cast<size_t>(n));

  ev = Ask(c, Request("GET", "/thing"), conn);
  ASSERT_NE(ev, nullptr);
  HttpResponse r;
  ASSERT_TRUE(Answer(c, conn, 200, "twelve bytes", &r));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "twelve bytes");
}

TEST_F(HttpTest, ChunkedResponse) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("GET", "/stream"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  EXPECT_EQ(mgffi_http_write_chunk(m, conn, "x", 1), MGFFI_ERR_STATE);  // not begun
  EXPECT_EQ(mgffi_http_end_chunked(m, conn), MGFFI_ERR_STATE);
  const std::string hdrs = "Content-Type: text/plain\r\n";
  ASSERT_EQ(mgffi_http_begin_chunked(m, conn, 200, hdrs.data(), hdrs.size()), MGFFI_OK);
  EXPECT_EQ(Reply(conn, 200, "no"), MGFFI_ERR_STATE);  // chunked response open
  ASSERT_EQ(mgffi_http_write_chunk(m, conn, "hello ", 6), MGFFI_OK);
  m.PollTimes(2);                                               // chunks may be spread over polls
  ASSERT_EQ(mgffi_http_write_chunk(m, conn, "", 0), MGFFI_OK);  // ignored
  std::string big(5000, 'z');
  ASSERT_EQ(mgffi_http_write_chunk(m, conn, big.data(), big.size()), MGFFI_OK);
  ASSERT_EQ(mgffi_http_write_chunk(m, conn, "world", 5), MGFFI_OK);
  ASSERT_EQ(mgffi_http_end_chunked(m, conn), MGFFI_OK);
  EXPECT_EQ(mgffi_http_write_chunk(m, conn, "late", 4), MGFFI_ERR_STATE);
  EXPECT_EQ(mgffi_http_end_chunked(m, conn), MGFFI_ERR_STATE);

  HttpResponse r;
  ASSERT_TRUE(c.ReadResponse(m, &r));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.chunked);
  EXPECT_FALSE(r.has_content_length);
  EXPECT_EQ(r.Header("Content-Type"), "text/plain");
  EXPECT_EQ(r.body, "hello " + big + "world");

  // The connection takes another request.
  uint64_t again = 0;
  RoundTrip(c, "/after", &again);
  EXPECT_EQ(again, conn);
}

TEST_F(HttpTest, MalformedRequestLineGets400AndServerStaysUp) {
  Client bad(port);
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(bad.Send(m, "GARBAGE\r\n\r\n"));
  ASSERT_TRUE(bad.ReadUntil(m, [](const std::string &b) { return b.size() >= 12; }))
      << "got: " << bad.buffer();
  EXPECT_EQ(bad.buffer().substr(0, 12), "HTTP/1.1 400");
  EXPECT_TRUE(bad.WaitEof(m));
  HttpResponse r;
  EXPECT_GT(mgtest::ParseResponse(bad.buffer(), false, &r), 0);
  EXPECT_EQ(mgtest::Lower(r.Header("Connection")), "close");

  int idx = m.FirstSeen(MGFFI_EV_HTTP_REJECTED);
  ASSERT_GE(idx, 0) << "no HTTP_REJECTED event";
  EXPECT_EQ(m.log()[idx].value, 400);
  EXPECT_FALSE(m.log()[idx].data.empty());
  EXPECT_EQ(m.log()[idx].listener_id, listener);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 0u);
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CLOSE, m.log()[idx].conn_id) == 1; }));

  Client good(port);
  ASSERT_TRUE(good.ok());
  RoundTrip(good, "/ok", nullptr);
}

TEST_F(HttpTest, BodyOverLimitGets413) {
  ASSERT_EQ(mgffi_set_limit(m, listener, MGFFI_LIMIT_MAX_BODY, 1000), MGFFI_OK);
  Client c(port);
  ASSERT_TRUE(c.ok());
  // Head plus the first bytes of the body: the glue answers on the head.
  ASSERT_TRUE(
      c.Send(m, Request("POST", "/upload", "Content-Length: 5000\r\n") + std::string(100, 'b')));
  ASSERT_TRUE(c.ReadUntil(m, [](const std::string &b) { return b.size() >= 12; }))
      << "got: " << c.buffer();
  EXPECT_EQ(c.buffer().substr(0, 12), "HTTP/1.1 413");
  EXPECT_TRUE(c.WaitEof(m));
  int idx = m.FirstSeen(MGFFI_EV_HTTP_REJECTED);
  ASSERT_GE(idx, 0);
  EXPECT_EQ(m.log()[idx].value, 413);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 0u);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_HDRS), 0u);

  // A body within the limit still works on a new connection.
  Client ok(port);
  ASSERT_TRUE(
      ok.Send(m, Request("POST", "/small", "Content-Length: 1000\r\n") + std::string(1000, 's')));
  const mgffi_event *ev = WaitRequest();
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->http->body.len, 1000u);
  HttpResponse r;
  ASSERT_TRUE(Answer(ok, ev->conn_id, 200, "fine", &r));
  EXPECT_EQ(r.body, "fine");
}

TEST_F(HttpTest, StreamingLargeBody) {
  ASSERT_EQ(mgffi_set_limit(m, listener, MGFFI_LIMIT_STREAM_THRESHOLD, 1000), MGFFI_OK);
  std::string body(100000, '\0');
  for (size_t i = 0; i < body.size(); i++) body[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  Client c(port);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(
      m, Request("POST", "/upload?name=f", "Content-Length: 100000\r\n") + body.substr(0, 500)));

  // The head comes first, flagged as streaming.
  const mgffi_event *hdrs = m.PollFor(MGFFI_EV_HTTP_HDRS);
  ASSERT_NE(hdrs, nullptr);
  const uint64_t conn = hdrs->conn_id;
  EXPECT_TRUE(hdrs->flags & MGFFI_F_STREAMING);
  ASSERT_NE(hdrs->http, nullptr);
  const mgffi_http_message *hm = hdrs->http;
  EXPECT_EQ(Str(hm->method), "POST");
  EXPECT_EQ(Str(hm->uri), "/upload");
  EXPECT_EQ(Str(hm->query), "name=f");
  EXPECT_EQ(hm->body.len, 0u);
  EXPECT_EQ(hm->content_length, 100000u);

  // The rest in pieces, polling in between.
  for (size_t off = 500; off < body.size(); off += 7919) {
    ASSERT_TRUE(c.Send(m, body.substr(off, 7919)));
    m.Poll(5);
  }
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_HTTP_BODY_END, conn) == 1; }))
      << "no HTTP_BODY_END";

  std::string got;
  int hdrs_idx = -1, end_idx = -1;
  const auto &log = m.log();
  for (size_t i = 0; i < log.size(); i++) {
    if (log[i].conn_id != conn) continue;
    if (log[i].type == MGFFI_EV_HTTP_HDRS) {
      EXPECT_EQ(hdrs_idx, -1) << "second HTTP_HDRS";
      hdrs_idx = static_cast<int>(i);
    } else if (log[i].type == MGFFI_EV_HTTP_BODY) {
      EXPECT_GE(hdrs_idx, 0) << "HTTP_BODY before HTTP_HDRS";
      EXPECT_EQ(end_idx, -1) << "HTTP_BODY after HTTP_BODY_END";
      EXPECT_EQ(log[i].value, static_cast<int64_t>(log[i].data.size()));
      got += log[i].data;
    } else if (log[i].type == MGFFI_EV_HTTP_BODY_END) {
      end_idx = static_cast<int>(i);
    }
  }
  EXPECT_EQ(got.size(), body.size());
  EXPECT_TRUE(got == body) << "streamed body differs";
  EXPECT_GT(m.Seen(MGFFI_EV_HTTP_BODY, conn), 1u);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 0u);
  // The head stays valid until the reply.
  EXPECT_EQ(Str(hm->uri), "/upload");

  HttpResponse r;
  ASSERT_TRUE(Answer(c, conn, 201, "stored " + std::to_string(got.size()), &r));
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "stored 100000");

  // The next request on the same connection is parsed normally.
  const mgffi_event *ev = Ask(c, Request("GET", "/next"), conn);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->uri), "/next");
  ASSERT_TRUE(Answer(c, conn, 200, "next", &r));
  EXPECT_EQ(r.body, "next");
}

TEST_F(HttpTest, SmallBodyBelowThresholdIsNotStreamed) {
  ASSERT_EQ(mgffi_set_limit(m, listener, MGFFI_LIMIT_STREAM_THRESHOLD, 1000), MGFFI_OK);
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("POST", "/s", "Content-Length: 10\r\n") + "0123456789");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(Str(ev->http->body), "0123456789");
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_HDRS), 0u);
  ASSERT_TRUE(Served(c, ev->conn_id, 200, "k"));
}

TEST_F(HttpTest, CloseEventWhenClientDisconnects) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("GET", "/x"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  const mgffi_http_message *hm = ev->http;
  EXPECT_EQ(mgffi_connection_count(m), 2u);
  c.Close();
  const mgffi_event *close_ev = m.PollFor(MGFFI_EV_CLOSE, conn);
  ASSERT_NE(close_ev, nullptr);
  EXPECT_EQ(close_ev->listener_id, listener);
  // The request of a closed connection stays readable until the next poll.
  EXPECT_EQ(Str(hm->uri), "/x");
  EXPECT_EQ(Reply(conn, 200, "late"), MGFFI_ERR_NO_CONN);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(mgffi_send(m, conn, "x", 1), MGFFI_ERR_NO_CONN);
  EXPECT_EQ(mgffi_close(m, conn, 0), MGFFI_ERR_NO_CONN);
  mgffi_conn_info info{};
  EXPECT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_ERR_NO_CONN);
  m.PollTimes(3);
  EXPECT_EQ(mgffi_http_begin_chunked(m, conn, 200, "", 0), MGFFI_ERR_NO_CONN);
  EXPECT_EQ(mgffi_connection_count(m), 1u);
  EXPECT_EQ(m.Seen(MGFFI_EV_CLOSE, conn), 1u);
}

TEST_F(HttpTest, ServerCloseWithPendingRequest) {
  Client c(port);
  const mgffi_event *ev = Ask(c, Request("GET", "/x"));
  ASSERT_NE(ev, nullptr);
  const uint64_t conn = ev->conn_id;
  ASSERT_EQ(mgffi_close(m, conn, 0), MGFFI_OK);
  EXPECT_TRUE(c.WaitEof(m));
  EXPECT_EQ(c.buffer(), "");
  EXPECT_EQ(m.Seen(MGFFI_EV_CLOSE, conn), 1u);
  EXPECT_EQ(Reply(conn, 200, "x"), MGFFI_ERR_NO_CONN);
}

TEST_F(HttpTest, EventViewsValidAfterRepliesInSameCycle) {
  // Several requests, answered one by one while walking the event array;
  // then the whole array is read again after all the API calls.
  Client a(port), b(port);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(m.PollUntil([&] { return mgffi_connection_count(m) == 3; }));
  ASSERT_TRUE(a.Send(m, Request("POST", "/from-a", "Content-Length: 3\r\n") + "AAA"));
  ASSERT_TRUE(b.Send(m, Request("POST", "/from-b", "Content-Length: 3\r\n") + "BBB"));
  // Wait for a poll that holds both requests (usually the first).
  int n = 0;
  const mgffi_event *evs = nullptr;
  for (int tries = 0; tries < 300; tries++) {
    n = m.Poll(10);
    evs = m.events();
    int msgs = 0;
    for (int i = 0; i < n; i++) msgs += evs[i].type == MGFFI_EV_HTTP_MSG;
    if (msgs == 2 || m.Seen(MGFFI_EV_HTTP_MSG) >= 2) break;
  }
  if (m.Seen(MGFFI_EV_HTTP_MSG) != 2 || n < 2) GTEST_SKIP() << "requests came in separate polls";
  std::vector<std::string> uris;
  for (int i = 0; i < n; i++) {
    if (evs[i].type != MGFFI_EV_HTTP_MSG) continue;
    ASSERT_EQ(Reply(evs[i].conn_id, 200, Str(evs[i].http->body)), MGFFI_OK);
    mgffi_conn_info info{};
    ASSERT_EQ(mgffi_get_conn_info(m, evs[i].conn_id, &info), MGFFI_OK);
    EXPECT_EQ(mgffi_send(m, evs[i].conn_id, nullptr, 0), MGFFI_OK);
    uris.push_back(Str(evs[i].http->uri));
  }
  uint64_t ids[8];
  EXPECT_EQ(mgffi_connection_ids(m, ids, 8), 3u);
  mgffi_set_limit(m, listener, MGFFI_LIMIT_STREAM_THRESHOLD, 0);
  // Re-read: same array, same contents.
  ASSERT_EQ(m.events(), evs);
  size_t idx = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].type != MGFFI_EV_HTTP_MSG) continue;
    ASSERT_NE(evs[i].http, nullptr);
    EXPECT_EQ(Str(evs[i].http->uri), uris[idx++]);
    EXPECT_EQ(Str(evs[i].http->method), "POST");
    const std::string body = Str(evs[i].http->body);
    EXPECT_TRUE(body == "AAA" || body == "BBB") << body;
    EXPECT_EQ(body == "AAA", Str(evs[i].http->uri) == "/from-a");
  }
  HttpResponse ra, rb;
  ASSERT_TRUE(a.ReadResponse(m, &ra));
  ASSERT_TRUE(b.ReadResponse(m, &rb));
  EXPECT_EQ(ra.body, "AAA");
  EXPECT_EQ(rb.body, "BBB");
}

TEST_F(HttpTest, RequestEventsCanBeMaskedOff) {
  ASSERT_EQ(mgffi_set_event_mask(m, listener, MGFFI_MASK(MGFFI_EV_CLOSE)), MGFFI_OK);
  Client c(port);
  ASSERT_TRUE(c.Send(m, Request("GET", "/quiet")));
  m.PollTimes(10);
  EXPECT_EQ(m.Seen(MGFFI_EV_HTTP_MSG), 0u);
  c.Close();
  EXPECT_NE(m.PollFor(MGFFI_EV_CLOSE), nullptr);
}

}  // namespace
