// protocol::Connection::rejected_status(): the HTTP error the server role answered instead of
// 101, which /metrics counts by status (tether_handshake_rejections_total). Zero for upgrades
// that succeeded, plain HTTP requests (not upgrades) and the client role.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "connection_harness.hpp"
#include "protocol/connection.hpp"

namespace tether_conn_test {
namespace {

using tether::protocol::CountingRandom;
using tether::protocol::ServerHandshakeConfig;

int status_after(std::string_view request, const ServerHandshakeConfig* server = nullptr) {
  ConnectionConfig cfg;
  cfg.role = Role::server;
  cfg.http.max_head_bytes = 256;
  cfg.server = server;
  Recorder rec;
  CountingRandom rng(1);
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  Bytes b = bytes(request);
  conn.receive(b);
  return conn.rejected_status();
}

TEST(RejectedStatus, ZeroWhenTheUpgradeSucceeds) { EXPECT_EQ(status_after(kUpgradeRequest), 0); }

TEST(RejectedStatus, ZeroForPlainHttpRequests) {
  EXPECT_EQ(status_after("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

TEST(RejectedStatus, MalformedAndOversizedRequestsAre400And431) {
  EXPECT_EQ(status_after("GET\r\n\r\n"), 400);
  EXPECT_EQ(status_after("GET / HTTP/1.1\r\nX: " + std::string(400, 'a') + "\r\n\r\n"), 431);
}

TEST(RejectedStatus, RefusedUpgradesCarryTheirStatus) {
  // §4.2.2: no Sec-WebSocket-Key -> 400; another version -> 426 (§4.4).
  EXPECT_EQ(status_after("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            400);
  std::string v8(kUpgradeRequest);
  v8.replace(v8.find("Version: 13"), 11, "Version: 8");
  EXPECT_EQ(status_after(v8), 426);
  ServerHandshakeConfig busy;
  busy.reject_status = 503;
  EXPECT_EQ(status_after(kUpgradeRequest, &busy), 503);
  ServerHandshakeConfig origin;
  origin.check_origin = [](std::string_view) { return false; };
  EXPECT_EQ(status_after(kUpgradeRequest, &origin), 403);
}

}  // namespace
}  // namespace tether_conn_test
