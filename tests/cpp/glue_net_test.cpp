// Raw TCP listeners and outgoing connections.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "mongoose_ffi.h"
#include "test_support.hpp"

using mgtest::Client;
using mgtest::Manager;
using mgtest::Str;

namespace {

class RawTest : public mgtest::ListenerTest {
 protected:
  RawTest() : ListenerTest("tcp://127.0.0.1:0", MGFFI_PROTO_RAW) {}

  // Bytes the manager received on conn so far (from the event log).
  std::string Received(uint64_t conn) const {
    std::string out;
    for (const auto &e : m.log()) {
      if (e.type == MGFFI_EV_READ && e.conn_id == conn) out += e.data;
    }
    return out;
  }
};

TEST_F(RawTest, AcceptReadAndEcho) {
  Client c(port);
  ASSERT_TRUE(c.ok());
  const mgffi_event *acc = m.PollFor(MGFFI_EV_ACCEPT);
  ASSERT_NE(acc, nullptr);
  const uint64_t conn = acc->conn_id;
  EXPECT_NE(conn, listener);
  EXPECT_EQ(acc->listener_id, listener);
  EXPECT_TRUE(acc->flags & MGFFI_F_ACCEPTED);
  EXPECT_EQ(acc->remote.port, c.local_port());
  EXPECT_EQ(acc->remote.ip[0], 127);
  EXPECT_EQ(acc->remote.ip[3], 1);

  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.listener_id, listener);
  EXPECT_EQ(info.local.port, port);
  EXPECT_EQ(info.remote.port, c.local_port());
  EXPECT_GE(info.fd, 0);
  char addr[64];
  mgffi_addr_format(&info.remote, 1, addr, sizeof(addr));
  EXPECT_EQ(std::string(addr), "127.0.0.1:" + std::to_string(c.local_port()));

  ASSERT_TRUE(c.Send(m, "ping\n"));
  const mgffi_event *rd = m.PollFor(MGFFI_EV_READ, conn);
  ASSERT_NE(rd, nullptr);
  EXPECT_EQ(rd->listener_id, listener);
  EXPECT_EQ(rd->value, static_cast<int64_t>(rd->data.len));
  ASSERT_TRUE(m.PollUntil([&] { return Received(conn).size() >= 5; }));
  EXPECT_EQ(Received(conn), "ping\n");
  // READ consumed the bytes: nothing stays buffered.
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.recv_buffered, 0u);

  ASSERT_EQ(mgffi_send(m, conn, "pong\n", 5), MGFFI_OK);
  ASSERT_TRUE(c.ReadUntil(m, [](const std::string &b) { return b.size() >= 5; }));
  EXPECT_EQ(c.buffer(), "pong\n");

  // A larger transfer both ways.
  std::string big(200000, 'q');
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 31 % 251);
  ASSERT_TRUE(c.Send(m, big));
  ASSERT_TRUE(m.PollUntil([&] { return Received(conn).size() >= 5 + big.size(); }));
  EXPECT_TRUE(Received(conn) == "ping\n" + big);
  c.buffer().clear();
  ASSERT_EQ(mgffi_send(m, conn, big.data(), big.size()), MGFFI_OK);
  ASSERT_TRUE(c.ReadUntil(m, [&](const std::string &b) { return b.size() >= big.size(); }));
  EXPECT_TRUE(c.buffer() == big);

  c.Close();
  ASSERT_NE(m.PollFor(MGFFI_EV_CLOSE, conn), nullptr);
  EXPECT_EQ(mgffi_send(m, conn, "x", 1), MGFFI_ERR_NO_CONN);
}

TEST_F(RawTest, SendOnListenerIsRefusedAndLeavesNothingQueued) {
  EXPECT_EQ(mgffi_send(m, listener, "x", 1), MGFFI_ERR_STATE);
  EXPECT_STREQ(mgffi_last_error(m), "cannot send on a listener");
  mgffi_conn_info info;
  ASSERT_EQ(mgffi_get_conn_info(m, listener, &info), MGFFI_OK);
  EXPECT_EQ(info.send_queued, 0u);
  EXPECT_NE(mgffi_poll_hint(m), 0) << "nothing to do: no 'poll now'";
}

TEST(Udp, ListenerClosedAtOnceReleasesItsPort) {
  Manager m;
  std::uint16_t port = 0;
  std::uint64_t id = m.Listen("udp://127.0.0.1:0", MGFFI_PROTO_RAW, &port);
  ASSERT_EQ(mgffi_close(m, id, 1), MGFFI_OK);
  const std::string url = "udp://127.0.0.1:" + std::to_string(port);
  std::uint64_t again = 0;
  EXPECT_EQ(mgffi_listen(m, url.c_str(), url.size(), MGFFI_PROTO_RAW, &again), MGFFI_OK)
      << mgffi_last_error(m);
  m.PollTimes(2, 0);  // the old connection is freed without touching the new socket
  mgffi_conn_info info;
  ASSERT_EQ(mgffi_get_conn_info(m, again, &info), MGFFI_OK);
  EXPECT_EQ(info.local.port, port);
}

TEST_F(RawTest, CloseAfterFlushDeliversQueuedBytes) {
  Client c(port);
  const mgffi_event *acc = m.PollFor(MGFFI_EV_ACCEPT);
  ASSERT_NE(acc, nullptr);
  const uint64_t conn = acc->conn_id;
  ASSERT_EQ(mgffi_send(m, conn, "last words", 10), MGFFI_OK);
  ASSERT_EQ(mgffi_close(m, conn, 0), MGFFI_OK);
  EXPECT_TRUE(c.WaitEof(m));
  EXPECT_EQ(c.buffer(), "last words");
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CLOSE, conn) == 1; }));
}

TEST_F(RawTest, PauseReadingHoldsBytes) {
  Client c(port);
  const mgffi_event *acc = m.PollFor(MGFFI_EV_ACCEPT);
  ASSERT_NE(acc, nullptr);
  const uint64_t conn = acc->conn_id;
  ASSERT_EQ(mgffi_pause_reading(m, conn, 1), MGFFI_OK);
  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, conn, &info), MGFFI_OK);
  EXPECT_EQ(info.reading_paused, 1);
  ASSERT_TRUE(c.Send(m, "held"));
  m.PollTimes(10);
  EXPECT_EQ(m.Seen(MGFFI_EV_READ, conn), 0u);
  ASSERT_EQ(mgffi_pause_reading(m, conn, 0), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] { return Received(conn) == "held"; }));
}

TEST_F(RawTest, OutgoingConnectionToOwnListener) {
  std::string url = "tcp://127.0.0.1:" + std::to_string(port);
  uint64_t cid = 0;
  ASSERT_EQ(mgffi_connect(m, url.c_str(), url.size(), MGFFI_PROTO_RAW, &cid), MGFFI_OK);
  ASSERT_NE(cid, 0u);
  ASSERT_TRUE(m.PollUntil(
      [&] { return m.Seen(MGFFI_EV_CONNECT, cid) == 1 && m.Seen(MGFFI_EV_ACCEPT) == 1; }));
  int acc = m.FirstSeen(MGFFI_EV_ACCEPT);
  const uint64_t server_side = m.log()[acc].conn_id;
  int con = m.FirstSeen(MGFFI_EV_CONNECT, cid);
  EXPECT_TRUE(m.log()[con].flags & MGFFI_F_CLIENT);
  EXPECT_EQ(m.log()[con].listener_id, 0u);

  ASSERT_EQ(mgffi_send(m, cid, "hello", 5), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] { return Received(server_side) == "hello"; }));
  ASSERT_EQ(mgffi_send(m, server_side, "back", 4), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] { return Received(cid) == "back"; }));

  ASSERT_EQ(mgffi_close(m, cid, 1), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] {
    return m.Seen(MGFFI_EV_CLOSE, cid) == 1 && m.Seen(MGFFI_EV_CLOSE, server_side) == 1;
  }));
  EXPECT_EQ(mgffi_connection_count(m), 1u);
}

TEST(Connect, RefusedYieldsErrorThenClose) {
  Manager m;
  const uint16_t closed_port = mgtest::UnusedPort();
  ASSERT_NE(closed_port, 0);
  std::string url = "tcp://127.0.0.1:" + std::to_string(closed_port);
  uint64_t id = 0;
  ASSERT_EQ(mgffi_connect(m, url.c_str(), url.size(), MGFFI_PROTO_RAW, &id), MGFFI_OK)
      << mgffi_last_error(m);
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CLOSE, id) == 1; }));
  int err = m.FirstSeen(MGFFI_EV_ERROR, id);
  int close = m.FirstSeen(MGFFI_EV_CLOSE, id);
  ASSERT_GE(err, 0) << "no ERROR event";
  EXPECT_LT(err, close);
  EXPECT_TRUE(mgtest::ContainsNoCase(m.log()[err].data, "refused")) << m.log()[err].data;
  EXPECT_TRUE(m.log()[err].flags & MGFFI_F_CLIENT);
  EXPECT_EQ(m.Seen(MGFFI_EV_CONNECT, id), 0u);
  EXPECT_EQ(mgffi_send(m, id, "x", 1), MGFFI_ERR_NO_CONN);
  EXPECT_EQ(mgffi_connection_count(m), 0u);
}

TEST(Connect, HttpRefusedYieldsErrorThenClose) {
  Manager m;
  const uint16_t closed_port = mgtest::UnusedPort();
  std::string url = "http://127.0.0.1:" + std::to_string(closed_port);
  uint64_t id = 0;
  ASSERT_EQ(mgffi_connect(m, url.c_str(), url.size(), MGFFI_PROTO_HTTP, &id), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CLOSE, id) == 1; }));
  int err = m.FirstSeen(MGFFI_EV_ERROR, id);
  ASSERT_GE(err, 0);
  EXPECT_LT(err, m.FirstSeen(MGFFI_EV_CLOSE, id));
  EXPECT_TRUE(mgtest::ContainsNoCase(m.log()[err].data, "refused")) << m.log()[err].data;
}

TEST(Connect, HttpClientGetsResponseFromOwnServer) {
  Manager m;
  uint16_t port = 0;
  uint64_t listener = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &port);
  ASSERT_NE(listener, 0u);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  uint64_t cid = 0;
  ASSERT_EQ(mgffi_connect(m, url.c_str(), url.size(), MGFFI_PROTO_HTTP, &cid), MGFFI_OK);
  ASSERT_TRUE(m.PollUntil([&] { return m.Seen(MGFFI_EV_CONNECT, cid) == 1; }));
  const std::string req = "GET /hi?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(mgffi_send(m, cid, req.data(), req.size()), MGFFI_OK);
  const mgffi_event *ev = m.PollFor(MGFFI_EV_HTTP_MSG);
  ASSERT_NE(ev, nullptr);
  ASSERT_NE(ev->conn_id, cid);  // the server side
  ASSERT_EQ(mgffi_http_reply(m, ev->conn_id, 202, "X-A: b\r\n", 8, "accepted", 8), MGFFI_OK);
  // The client-side HTTP_MSG carries the response.
  const mgffi_event *resp = m.PollFor(MGFFI_EV_HTTP_MSG, cid);
  ASSERT_NE(resp, nullptr);
  ASSERT_NE(resp->http, nullptr);
  EXPECT_EQ(resp->http->status, 202);
  EXPECT_EQ(resp->value, 202);
  EXPECT_EQ(Str(resp->http->body), "accepted");
  EXPECT_TRUE(resp->flags & MGFFI_F_CLIENT);
  // Replying is for server connections only.
  EXPECT_EQ(mgffi_http_reply(m, cid, 200, "", 0, "", 0), MGFFI_ERR_STATE);
}

}  // namespace
