// The fixture of the HTTP server tests (glue_http_test.cpp,
// glue_http_stream_test.cpp): a manager listening for HTTP, and helpers
// that wait for a request, answer it and read the answer back.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "mongoose_ffi.h"
#include "test_support.hpp"

namespace mgtest {

class HttpTest : public ListenerTest {
 protected:
  HttpTest() : ListenerTest("http://127.0.0.1:0", MGFFI_PROTO_HTTP) {}

  // Polls until a request arrives; returns its event (valid until the next
  // poll), failing the test on timeout.
  const mgffi_event *WaitRequest(uint64_t conn = 0) {
    const mgffi_event *ev = m.PollFor(MGFFI_EV_HTTP_MSG, conn);
    EXPECT_NE(ev, nullptr) << "no HTTP_MSG";
    if (ev != nullptr) EXPECT_NE(ev->http, nullptr);
    return ev;
  }

  int Reply(uint64_t conn, int status, const std::string &body, const std::string &headers = "") {
    return mgffi_http_reply(m, conn, status, headers.data(), headers.size(), body.data(),
                            body.size());
  }

  // Sends req on c and polls until a request arrives (on conn, if given);
  // nullptr (a failure) when the send fails or nothing arrives.
  const mgffi_event *Ask(Client &c, const std::string &req, uint64_t conn = 0) {
    if (!c.Send(m, req)) {
      ADD_FAILURE() << "send failed";
      return nullptr;
    }
    return WaitRequest(conn);
  }

  // Answers conn with status and body; the response c reads back must
  // carry that body.
  ::testing::AssertionResult Served(Client &c, uint64_t conn, int status, const std::string &body) {
    HttpResponse r;
    ::testing::AssertionResult ok = Answer(c, conn, status, body, &r);
    if (!ok) return ok;
    if (r.body != body)
      return ::testing::AssertionFailure() << "body \"" << r.body << "\", not \"" << body << "\"";
    return ::testing::AssertionSuccess();
  }

  // Answers conn with status and body, then reads the response on c into *r.
  ::testing::AssertionResult Answer(Client &c, uint64_t conn, int status, const std::string &body,
                                    HttpResponse *r) {
    const int rc = Reply(conn, status, body);
    if (rc != MGFFI_OK) return ::testing::AssertionFailure() << "mgffi_http_reply: " << rc;
    if (!c.ReadResponse(m, r)) return ::testing::AssertionFailure() << "no response read";
    return ::testing::AssertionSuccess();
  }

  // Sends a GET, answers it with body and checks the client reads it back.
  void RoundTrip(Client &c, const std::string &target, uint64_t *conn_out) {
    const mgffi_event *ev = Ask(c, Request("GET", target));
    ASSERT_NE(ev, nullptr);
    ASSERT_EQ(Str(ev->http->uri), target);
    if (conn_out != nullptr) *conn_out = ev->conn_id;
    HttpResponse r;
    ASSERT_TRUE(Answer(c, ev->conn_id, 200, "body of " + target, &r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "body of " + target);
  }
};

}  // namespace mgtest
