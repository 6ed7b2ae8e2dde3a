// Tests of the C ABI that need no peer: versions, layout, argument checks,
// listen failures, address formatting and signals.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "mongoose_ffi.h"
#include "test_support.hpp"

using mgtest::Manager;

namespace {

// ---- versions and layout ----------------------------------------------------

TEST(Version, AbiVersionMatchesHeader) {
  EXPECT_EQ(mgffi_abi_version(), MGFFI_ABI_VERSION);
  EXPECT_EQ(mgffi_abi_version(), 2);
}

TEST(Version, MongooseVersionIs723) {
  const char *v = mgffi_mongoose_version();
  ASSERT_NE(v, nullptr);
  EXPECT_STREQ(v, "7.23");
}

// The table the library reports is generated from the header at build
// time; the same generated list, compiled here, gives what this compiler
// makes of the header: they must agree entry for entry.
#define MGFFI_STRUCT(T) expected[{#T, ""}] = {0, sizeof(T)};
#define MGFFI_FIELD(T, F) expected[{#T, #F}] = {offsetof(T, F), sizeof(((T *)nullptr)->F)};

TEST(Layout, EntriesMatchHeaderStructs) {
  std::map<std::pair<std::string, std::string>, std::pair<size_t, size_t>> expected;
#include "mgffi_layout.inc"
  ASSERT_GT(expected.size(), 40u);

  size_t count = 0;
  const mgffi_layout_entry *entries = mgffi_layout(&count);
  ASSERT_NE(entries, nullptr);
  ASSERT_EQ(count, expected.size());
  EXPECT_EQ(mgffi_layout(nullptr), entries);  // count is optional

  std::map<std::pair<std::string, std::string>, int> found;
  for (size_t i = 0; i < count; i++) {
    ASSERT_NE(entries[i].type, nullptr);
    std::pair<std::string, std::string> key{entries[i].type,
                                            entries[i].field ? entries[i].field : ""};
    auto it = expected.find(key);
    ASSERT_NE(it, expected.end()) << key.first << "." << key.second;
    EXPECT_EQ(entries[i].offset, it->second.first) << key.first << "." << key.second;
    EXPECT_EQ(entries[i].size, it->second.second) << key.first << "." << key.second;
    found[key]++;
  }
  EXPECT_EQ(found.size(), expected.size());
  for (const auto &f : found) EXPECT_EQ(f.second, 1) << f.first.first << "." << f.first.second;

  // Spot checks of the struct sizes against the header directly.
  auto size_of = [&](const char *type) -> size_t {
    for (size_t i = 0; i < count; i++) {
      if (entries[i].field == nullptr && std::strcmp(entries[i].type, type) == 0) {
        return entries[i].size;
      }
    }
    return 0;
  };
  EXPECT_EQ(size_of("mgffi_event"), sizeof(mgffi_event));
  EXPECT_EQ(size_of("mgffi_http_message"), sizeof(mgffi_http_message));
  EXPECT_EQ(size_of("mgffi_conn_info"), sizeof(mgffi_conn_info));
  EXPECT_EQ(size_of("mgffi_addr"), sizeof(mgffi_addr));
  EXPECT_EQ(size_of("mgffi_str"), sizeof(mgffi_str));
  EXPECT_EQ(size_of("mgffi_header"), sizeof(mgffi_header));
}

// ---- manager basics -----------------------------------------------------------

TEST(Manager, NewPollAndFree) {
  Manager m;
  ASSERT_NE(m.get(), nullptr);
  EXPECT_STREQ(mgffi_last_error(m), "");
  EXPECT_EQ(mgffi_connection_count(m), 0u);
  EXPECT_EQ(mgffi_poll(m, 0), 0);
  EXPECT_NE(mgffi_events(m), nullptr);
  uint64_t t0 = mgffi_millis();
  EXPECT_GE(mgffi_poll(m, 20), 0);
  EXPECT_GE(mgffi_millis(), t0);
  mgffi_manager_free(nullptr);  // ignored
}

TEST(Manager, ConnectionCountAndIds) {
  Manager m;
  uint16_t p1 = 0, p2 = 0;
  uint64_t a = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &p1);
  uint64_t b = m.Listen("tcp://127.0.0.1:0", MGFFI_PROTO_RAW, &p2);
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  EXPECT_NE(a, b);
  EXPECT_NE(p1, p2);
  EXPECT_EQ(mgffi_connection_count(m), 2u);
  uint64_t ids[4] = {0, 0, 0, 0};
  EXPECT_EQ(mgffi_connection_ids(m, ids, 4), 2u);
  EXPECT_TRUE((ids[0] == a && ids[1] == b) || (ids[0] == b && ids[1] == a));
  uint64_t one[1] = {0};
  EXPECT_EQ(mgffi_connection_ids(m, one, 1), 2u);  // count of all, writes one
  EXPECT_TRUE(one[0] == a || one[0] == b);
  EXPECT_EQ(mgffi_connection_ids(m, nullptr, 4), 2u);

  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, a, &info), MGFFI_OK);
  EXPECT_EQ(info.id, a);
  EXPECT_TRUE(info.flags & MGFFI_F_LISTENER);
  EXPECT_EQ(info.local.port, p1);
  EXPECT_EQ(info.local.is_ip6, 0);
  EXPECT_EQ(info.local.ip[0], 127);
  EXPECT_GE(info.fd, 0);

  ASSERT_EQ(mgffi_close(m, b, 1), MGFFI_OK);
  EXPECT_EQ(mgffi_get_conn_info(m, b, &info), MGFFI_ERR_NO_CONN);  // closing: gone
  ASSERT_TRUE(m.PollUntil([&] { return mgffi_connection_count(m) == 1; }));
  EXPECT_EQ(mgffi_connection_ids(m, ids, 4), 1u);
  EXPECT_EQ(ids[0], a);
}

// ---- argument checks ------------------------------------------------------------

TEST(Args, NullManager) {
  uint64_t id = 0;
  mgffi_conn_info info{};
  EXPECT_EQ(mgffi_poll(nullptr, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_events(nullptr), nullptr);
  ASSERT_NE(mgffi_last_error(nullptr), nullptr);
  EXPECT_GT(std::strlen(mgffi_last_error(nullptr)), 0u);
  EXPECT_EQ(mgffi_connection_count(nullptr), 0u);
  EXPECT_EQ(mgffi_connection_ids(nullptr, &id, 1), 0u);
  EXPECT_EQ(abi_check::listen_url(nullptr, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, &id),
            MGFFI_ERR_ARG);
  EXPECT_EQ(abi_check::connect_url(nullptr, "tcp://127.0.0.1:1", MGFFI_PROTO_RAW, &id),
            MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_set_event_mask(nullptr, 1, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_send(nullptr, 1, "x", 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_close(nullptr, 1, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_pause_reading(nullptr, 1, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_get_conn_info(nullptr, 1, &info), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_set_limit(nullptr, 1, MGFFI_LIMIT_MAX_BODY, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_reply(nullptr, 1, 200, "", 0, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_begin_chunked(nullptr, 1, 200, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_write_chunk(nullptr, 1, "x", 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_end_chunked(nullptr, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_serve_dir(nullptr, 1, "/tmp", 4, nullptr, nullptr), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_serve_file(nullptr, 1, "/tmp/x", 6, nullptr, nullptr), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_ws_upgrade(nullptr, 1, nullptr, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_ws_send(nullptr, 1, "x", 1, 1), MGFFI_ERR_ARG);
}

TEST(Args, NullUrlIdAndBuffers) {
  Manager m;
  uint64_t id = 0;
  EXPECT_EQ(mgffi_listen(m, nullptr, 0, MGFFI_PROTO_HTTP, &id), MGFFI_ERR_ARG);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(abi_check::listen_url(m, "http://127.0.0.1:0", MGFFI_PROTO_HTTP, nullptr),
            MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_connect(m, nullptr, 0, MGFFI_PROTO_RAW, &id), MGFFI_ERR_ARG);
  EXPECT_EQ(abi_check::connect_url(m, "tcp://127.0.0.1:1", MGFFI_PROTO_RAW, nullptr),
            MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_connection_count(m), 0u);  // nothing was created

  uint16_t port = 0;
  uint64_t l = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &port);
  ASSERT_NE(l, 0u);
  EXPECT_EQ(mgffi_send(m, l, nullptr, 5), MGFFI_ERR_ARG);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(mgffi_send(m, l, nullptr, 0), MGFFI_OK);  // empty send is fine
  EXPECT_EQ(mgffi_http_reply(m, l, 200, nullptr, 3, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_reply(m, l, 200, "", 0, nullptr, 3), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_begin_chunked(m, l, 200, nullptr, 3), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_write_chunk(m, l, nullptr, 3), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_get_conn_info(m, l, nullptr), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_serve_dir(m, l, nullptr, 0, nullptr, nullptr), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_serve_file(m, l, nullptr, 0, nullptr, nullptr), MGFFI_ERR_ARG);
  mgffi_serve_opts opts{};
  opts.index.len = 3;  // NULL with a length
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, &opts, nullptr), MGFFI_ERR_ARG);
  opts = mgffi_serve_opts{};
  opts.mime_types = {"txt", 3};  // not "ext=type"
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, &opts, nullptr), MGFFI_ERR_ARG);
  opts = mgffi_serve_opts{};
  opts.cache_control = {"*", 1};  // no tab between pattern and value
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, &opts, nullptr), MGFFI_ERR_ARG);
  opts = mgffi_serve_opts{};
  opts.index = {"index.html,../x", 15};
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, &opts, nullptr), MGFFI_ERR_ARG);
  opts = mgffi_serve_opts{};
  opts.spa_fallback = {"../x", 4};
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, &opts, nullptr), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_serve_dir(m, l, "/tmp", 4, nullptr, nullptr), MGFFI_ERR_STATE);
  EXPECT_EQ(mgffi_set_file_cache(nullptr, 1, 1, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_set_file_cache(m, 16, 100, 1000), MGFFI_OK);
  EXPECT_EQ(mgffi_ws_upgrade(m, l, nullptr, 4), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_ws_send(m, l, nullptr, 4, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_ws_send(m, l, "x", 1, 16), MGFFI_ERR_ARG);  // bad opcode
  char buf[8];
  EXPECT_EQ(mgffi_url_decode("a%20b", 5, nullptr, 8, 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_url_decode(nullptr, 3, buf, sizeof(buf), 0), MGFFI_ERR_ARG);
  // A listener is not an HTTP server connection with a request.
  EXPECT_EQ(mgffi_http_reply(m, l, 200, "", 0, "", 0), MGFFI_ERR_STATE);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
}

TEST(Args, BadProtocol) {
  Manager m;
  uint64_t id = 0;
  EXPECT_EQ(abi_check::listen_url(m, "http://127.0.0.1:0", 2, &id), MGFFI_ERR_ARG);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(abi_check::listen_url(m, "http://127.0.0.1:0", -1, &id), MGFFI_ERR_ARG);
  EXPECT_EQ(abi_check::connect_url(m, "tcp://127.0.0.1:1", 7, &id), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_connection_count(m), 0u);
}

TEST(Args, InvalidStatus) {
  Manager m;
  uint16_t port = 0;
  uint64_t l = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &port);
  ASSERT_NE(l, 0u);
  EXPECT_EQ(mgffi_http_reply(m, l, 42, "", 0, "", 0), MGFFI_ERR_ARG);
  EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u);
  EXPECT_EQ(mgffi_http_reply(m, l, 99, "", 0, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_reply(m, l, 1000, "", 0, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_reply(m, l, -200, "", 0, "", 0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_http_begin_chunked(m, l, 42, "", 0), MGFFI_ERR_ARG);
  // Argument errors come before the connection lookup.
  EXPECT_EQ(mgffi_http_reply(m, 987654321, 42, "", 0, "", 0), MGFFI_ERR_ARG);
}

TEST(Args, UnknownConnectionId) {
  Manager m;
  const uint64_t bogus = 987654321;
  mgffi_conn_info info{};
  auto expect_no_conn = [&](int rc, const char *what) {
    EXPECT_EQ(rc, MGFFI_ERR_NO_CONN) << what;
    EXPECT_GT(std::strlen(mgffi_last_error(m)), 0u) << what;
  };
  expect_no_conn(mgffi_send(m, bogus, "x", 1), "send");
  expect_no_conn(mgffi_close(m, bogus, 0), "close");
  expect_no_conn(mgffi_close(m, bogus, 1), "close now");
  expect_no_conn(mgffi_set_event_mask(m, bogus, 0), "set_event_mask");
  expect_no_conn(mgffi_pause_reading(m, bogus, 1), "pause_reading");
  expect_no_conn(mgffi_get_conn_info(m, bogus, &info), "get_conn_info");
  expect_no_conn(mgffi_set_limit(m, bogus, MGFFI_LIMIT_MAX_BODY, 10), "set_limit");
  expect_no_conn(mgffi_http_reply(m, bogus, 200, "", 0, "ok", 2), "http_reply");
  expect_no_conn(mgffi_http_begin_chunked(m, bogus, 200, "", 0), "begin_chunked");
  expect_no_conn(mgffi_http_write_chunk(m, bogus, "x", 1), "write_chunk");
  expect_no_conn(mgffi_http_end_chunked(m, bogus), "end_chunked");
  expect_no_conn(mgffi_http_serve_dir(m, bogus, "/tmp", 4, nullptr, nullptr), "serve_dir");
  expect_no_conn(mgffi_ws_upgrade(m, bogus, nullptr, 0), "ws_upgrade");
  expect_no_conn(mgffi_ws_send(m, bogus, "x", 1, 1), "ws_send");
  EXPECT_NE(std::string(mgffi_last_error(m)).find("987654321"), std::string::npos)
      << mgffi_last_error(m);
}

TEST(Args, SetLimitsChecks) {
  Manager m;
  uint16_t p1 = 0, p2 = 0;
  uint64_t http = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &p1);
  uint64_t raw = m.Listen("tcp://127.0.0.1:0", MGFFI_PROTO_RAW, &p2);
  uint64_t value = 0;
  EXPECT_EQ(mgffi_set_limit(m, http, MGFFI_LIMIT_MAX_BODY, 1000), MGFFI_OK);
  EXPECT_EQ(mgffi_get_limit(m, http, MGFFI_LIMIT_MAX_BODY, &value), MGFFI_OK);
  EXPECT_EQ(value, 1000u);
  // 0 is "none" for every limit.
  EXPECT_EQ(mgffi_set_limit(m, raw, MGFFI_LIMIT_IDLE_TIMEOUT_MS, 0), MGFFI_OK);
  // Unknown keys and values over the maximum are argument errors.
  EXPECT_EQ(mgffi_set_limit(m, http, MGFFI_LIMIT_COUNT, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_set_limit(m, http, -1, 1), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_set_limit(m, http, MGFFI_LIMIT_MAX_HEADERS, 1000), MGFFI_ERR_ARG);
  EXPECT_NE(std::string(mgffi_last_error(m)).find("max_headers"), std::string::npos);
  EXPECT_EQ(mgffi_get_limit(m, http, MGFFI_LIMIT_COUNT, &value), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_get_limit(m, http, MGFFI_LIMIT_MAX_BODY, nullptr), MGFFI_ERR_ARG);
  // The library describes every key.
  for (int key = 0; key < MGFFI_LIMIT_COUNT; key++) {
    const char *name = nullptr;
    uint64_t def = 0, max = 0;
    EXPECT_EQ(mgffi_limit_info(key, MGFFI_PROTO_HTTP, &name, &def, &max), MGFFI_OK) << key;
    ASSERT_NE(name, nullptr);
    EXPECT_GT(std::strlen(name), 0u);
    EXPECT_LE(def, max) << name;
  }
  EXPECT_EQ(mgffi_limit_info(MGFFI_LIMIT_COUNT, MGFFI_PROTO_HTTP, nullptr, nullptr, nullptr),
            MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_limit_info(0, 5, nullptr, nullptr, nullptr), MGFFI_ERR_ARG);
}

// ---- listen failures ---------------------------------------------------------------

TEST(Listen, PortAlreadyInUseByManager) {
  Manager m;
  uint16_t port = 0;
  ASSERT_NE(m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &port), 0u);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  uint64_t id = 777;
  EXPECT_EQ(mgffi_listen(m, url.c_str(), url.size(), MGFFI_PROTO_HTTP, &id), MGFFI_ERR_LISTEN);
  EXPECT_EQ(id, 777u);  // untouched on failure
  std::string err = mgffi_last_error(m);
  EXPECT_NE(err.find(url), std::string::npos) << err;
  EXPECT_EQ(mgffi_connection_count(m), 1u);
}

TEST(Listen, PortAlreadyInUseByOtherSocket) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len), 0);
  std::string url = "tcp://127.0.0.1:" + std::to_string(ntohs(sin.sin_port));

  Manager m;
  uint64_t id = 0;
  EXPECT_EQ(mgffi_listen(m, url.c_str(), url.size(), MGFFI_PROTO_RAW, &id), MGFFI_ERR_LISTEN);
  std::string err = mgffi_last_error(m);
  EXPECT_NE(err.find(url), std::string::npos) << err;
  close(fd);
}

TEST(Listen, InvalidUrl) {
  Manager m;
  uint64_t id = 0;
  EXPECT_EQ(abi_check::listen_url(m, "http://not an address:x", MGFFI_PROTO_HTTP, &id),
            MGFFI_ERR_LISTEN);
  EXPECT_NE(std::string(mgffi_last_error(m)).find("not an address"), std::string::npos)
      << mgffi_last_error(m);
}

// ---- addresses ------------------------------------------------------------------------

TEST(Addr, FormatIPv4) {
  mgffi_addr a{};
  a.ip[0] = 127, a.ip[1] = 0, a.ip[2] = 0, a.ip[3] = 1;
  a.port = 8080;
  char buf[64];
  EXPECT_EQ(mgffi_addr_format(&a, 1, buf, sizeof(buf)),
            static_cast<int>(std::strlen("127.0.0.1:8080")));
  EXPECT_STREQ(buf, "127.0.0.1:8080");
  EXPECT_EQ(mgffi_addr_format(&a, 0, buf, sizeof(buf)), static_cast<int>(std::strlen("127.0.0.1")));
  EXPECT_STREQ(buf, "127.0.0.1");
  a.ip[0] = 10, a.ip[1] = 20, a.ip[2] = 30, a.ip[3] = 255;
  a.port = 65535;
  EXPECT_EQ(mgffi_addr_format(&a, 1, buf, sizeof(buf)),
            static_cast<int>(std::strlen("10.20.30.255:65535")));
  EXPECT_STREQ(buf, "10.20.30.255:65535");
  // Truncated, still NUL-terminated.
  char small[6];
  EXPECT_EQ(mgffi_addr_format(&a, 1, small, sizeof(small)), MGFFI_ERR_SPACE);
  EXPECT_STREQ(small, "10.20");
  EXPECT_EQ(mgffi_addr_format(nullptr, 1, buf, sizeof(buf)), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_addr_format(&a, 1, nullptr, 10), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_addr_format(&a, 1, buf, 0), MGFFI_ERR_ARG);
}

TEST(Addr, FormatIPv6) {
  mgffi_addr a{};
  a.is_ip6 = 1;
  a.ip[15] = 1;  // ::1
  a.port = 9000;
  char buf[80];
  EXPECT_EQ(mgffi_addr_format(&a, 1, buf, sizeof(buf)),
            static_cast<int>(std::strlen("[::1]:9000")));
  EXPECT_STREQ(buf, "[::1]:9000");
  EXPECT_EQ(mgffi_addr_format(&a, 0, buf, sizeof(buf)), 3);
  EXPECT_STREQ(buf, "::1");
  const uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
  std::memcpy(a.ip, ip, 16);
  a.port = 443;
  EXPECT_EQ(mgffi_addr_format(&a, 1, buf, sizeof(buf)),
            static_cast<int>(std::strlen("[2001:db8::1234]:443")));
  EXPECT_STREQ(buf, "[2001:db8::1234]:443");
}

TEST(Addr, ListenerAddressesFormat) {
  Manager m;
  uint16_t port = 0;
  uint64_t l4 = m.Listen("http://127.0.0.1:0", MGFFI_PROTO_HTTP, &port);
  ASSERT_NE(l4, 0u);
  mgffi_conn_info info{};
  ASSERT_EQ(mgffi_get_conn_info(m, l4, &info), MGFFI_OK);
  char buf[80];
  mgffi_addr_format(&info.local, 1, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf), "127.0.0.1:" + std::to_string(port));

  uint64_t l6 = 0;
  if (abi_check::listen_url(m, "http://[::1]:0", MGFFI_PROTO_HTTP, &l6) != MGFFI_OK) {
    GTEST_SKIP() << "no IPv6 loopback: " << mgffi_last_error(m);
  }
  ASSERT_EQ(mgffi_get_conn_info(m, l6, &info), MGFFI_OK);
  EXPECT_EQ(info.local.is_ip6, 1);
  ASSERT_NE(info.local.port, 0);
  mgffi_addr_format(&info.local, 1, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf), "[::1]:" + std::to_string(info.local.port));
}

// ---- misc helpers -------------------------------------------------------------------------

TEST(UrlDecode, DecodesAndChecksSpace) {
  char buf[32];
  EXPECT_EQ(mgffi_url_decode("a%20b+c", 7, buf, sizeof(buf), 0), 5);
  EXPECT_EQ(std::string(buf, 5), "a b+c");
  EXPECT_EQ(mgffi_url_decode("a%20b+c", 7, buf, sizeof(buf), 1), 5);
  EXPECT_EQ(std::string(buf, 5), "a b c");
  EXPECT_EQ(mgffi_url_decode("abcdef", 6, buf, 3, 0), MGFFI_ERR_SPACE);
}

// ---- signals ----------------------------------------------------------------------------------

TEST(Signal, WatchRaiseTake) {
  EXPECT_EQ(mgffi_signal_watch(0), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_signal_watch(65), MGFFI_ERR_ARG);
  EXPECT_EQ(mgffi_signal_watch(-3), MGFFI_ERR_ARG);
  while (mgffi_signal_take() != 0) {
  }  // forget anything recorded earlier
  ASSERT_EQ(mgffi_signal_watch(SIGUSR1), MGFFI_OK);
  ASSERT_EQ(raise(SIGUSR1), 0);  // recorded, not fatal
  EXPECT_EQ(mgffi_signal_take(), SIGUSR1);
  EXPECT_EQ(mgffi_signal_take(), 0);
  // Recorded twice before a take: still one pending flag.
  raise(SIGUSR1);
  raise(SIGUSR1);
  EXPECT_EQ(mgffi_signal_take(), SIGUSR1);
  EXPECT_EQ(mgffi_signal_take(), 0);
  signal(SIGUSR1, SIG_DFL);
}

}  // namespace
