// protocol::NameTable: request targets and subprotocols interned per loop (one entry per
// distinct pair, refcounted), and a connection's path()/subprotocol() read back through it.
#include "protocol/names.hpp"

#include <gtest/gtest.h>

#include "connection_harness.hpp"

namespace {

using tether::protocol::NameTable;

TEST(NameTable, SamePairSharesOneEntryUntilTheLastRelease) {
  NameTable t;
  const auto* a = t.acquire("/chat", "chat.v1");
  const auto* b = t.acquire("/chat", "chat.v1");
  EXPECT_EQ(a, b);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(NameTable::path(a), "/chat");
  EXPECT_EQ(NameTable::subprotocol(a), "chat.v1");
  const auto* c = t.acquire("/chat", "");
  EXPECT_NE(c, a);
  EXPECT_EQ(t.size(), 2u);
  t.release(a);
  EXPECT_EQ(t.size(), 2u);  // b still holds it
  EXPECT_EQ(NameTable::path(b), "/chat");
  t.release(b);
  EXPECT_EQ(t.size(), 1u);
  t.release(c);
  EXPECT_EQ(t.size(), 0u);
}

TEST(NameTable, TheSplitBetweenPathAndSubprotocolIsKept) {
  NameTable t;
  const auto* a = t.acquire("/ab", "c");
  const auto* b = t.acquire("/a", "bc");
  EXPECT_NE(a, b);
  EXPECT_EQ(NameTable::path(a), "/ab");
  EXPECT_EQ(NameTable::subprotocol(a), "c");
  EXPECT_EQ(NameTable::path(b), "/a");
  EXPECT_EQ(NameTable::subprotocol(b), "bc");
  EXPECT_EQ(NameTable::path(nullptr), "");
  t.release(a);
  t.release(b);
  const auto* own = NameTable::own("/x", "y");
  EXPECT_EQ(NameTable::path(own), "/x");
  EXPECT_EQ(NameTable::subprotocol(own), "y");
  NameTable::drop_own(own);
}

// Connections of one loop share the table: each handshake takes a reference, each connection's
// end gives it back.
TEST(NameTable, ConnectionsInternTheirTargetAndSubprotocol) {
  using namespace tether::protocol;
  NameTable table;
  ServerHandshakeConfig hs;
  hs.subprotocols = {"chat.v1"};
  ConnectionConfig cfg;
  cfg.server = &hs;
  cfg.names = &table;
  {
    tether_conn_test::Recorder r1, r2;
    Connection c1(cfg, r1), c2(cfg, r2);
    std::string req(tether_conn_test::kUpgradeRequest);
    req.replace(req.find("/chat"), 5, "/room?x=1");
    req.insert(req.size() - 2, "Sec-WebSocket-Protocol: chat.v1\r\n");
    auto b1 = tether_conn_test::bytes(req), b2 = b1;
    c1.receive(b1);
    c2.receive(b2);
    ASSERT_EQ(c1.state(), State::open);
    EXPECT_EQ(c1.path(), "/room?x=1");
    EXPECT_EQ(c1.subprotocol(), "chat.v1");
    EXPECT_EQ(c2.path(), "/room?x=1");
    EXPECT_EQ(table.size(), 1u);
  }
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
