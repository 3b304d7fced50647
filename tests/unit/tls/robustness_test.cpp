// Hostile or broken input: whatever arrives, a Session fails with a reason and never crashes.
#include "tls/tls.hpp"

#include <gtest/gtest.h>

#include <random>

#include "tls_harness.hpp"

namespace tls_test {
namespace {

using ::testing::HasSubstr;

TEST(TlsRobustness, PlainHttpToATlsServerFailsWithAReason) {
  Session server(server_ctx(), true);
  ASSERT_TRUE(server.feed(bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")));
  std::vector<uint8_t> buf(1024);
  EXPECT_EQ(server.read(buf), 0u);
  ASSERT_TRUE(server.failed());
  EXPECT_EQ(server.error(), "http request");
  EXPECT_FALSE(server.handshake_done());
  EXPECT_EQ(server.read(buf), 0u);  // stays failed, quietly
  EXPECT_FALSE(server.feed(bytes("more")));
}

TEST(TlsRobustness, GarbageToAServerFailsWithAnAlertToSend) {
  Session server(server_ctx(), true);
  using namespace std::literals;
  ASSERT_TRUE(server.feed(bytes("\x16\x03\x01\x00\x05hello-this-is-not-tls"sv)));
  std::vector<uint8_t> buf(1024);
  EXPECT_EQ(server.read(buf), 0u);
  ASSERT_TRUE(server.failed());
  EXPECT_FALSE(server.error().empty());
  // The fatal alert is in pending() for the caller to flush before closing (RFC 8446 §6.2).
  ASSERT_FALSE(server.pending().empty());
  EXPECT_EQ(server.pending()[0], 0x15);  // alert record
}

TEST(TlsRobustness, RandomBytesNeverCrashEitherRole) {
  std::mt19937 rng(12345);
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  std::vector<uint8_t> buf(4096);
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> junk(1 + rng() % 3000);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0) {  // a plausible record header, so the parser goes deeper
      junk.insert(junk.begin(), {0x16, 0x03, 0x03, static_cast<uint8_t>(junk.size() >> 8),
                                 static_cast<uint8_t>(junk.size())});
    }
    Session s = i % 3 == 0 ? Session(cctx, false, "localhost") : Session(sctx, true);
    for (std::size_t off = 0; off < junk.size() && !s.failed(); off += 97) {
      s.feed(std::span(junk).subspan(off, std::min<std::size_t>(97, junk.size() - off)));
      while (s.read(buf) > 0) {
      }
    }
    EXPECT_FALSE(s.handshake_done());
    if (s.failed()) {
      EXPECT_FALSE(s.error().empty());
    }
    s.consume(s.pending().size());
  }
}

TEST(TlsRobustness, TamperedRecordAfterTheHandshakeFailsTheReceiver) {
  Pair p;
  p.pump();
  ASSERT_TRUE(p.both_done());
  ASSERT_TRUE(p.server.write(bytes("integrity matters")));
  std::vector<uint8_t> record(p.server.pending().begin(), p.server.pending().end());
  p.server.consume(record.size());
  record[record.size() - 3] ^= 0x01;  // inside the AEAD tag
  ASSERT_TRUE(p.client.feed(record));
  std::vector<uint8_t> buf(1024);
  EXPECT_EQ(p.client.read(buf), 0u);
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "decryption failed or bad record mac");
  EXPECT_FALSE(p.client.peer_closed());
}

TEST(TlsRobustness, TruncationIsNotAnOrderlyClose) {
  // A TCP EOF mid-stream: the Session never saw close_notify, so peer_closed() stays false
  // and the caller must treat the EOF as a truncation (RFC 8446 §6.1).
  Pair p;
  p.pump();
  ASSERT_TRUE(p.server.write(bytes("partial")));
  auto pending = p.server.pending();
  p.client.feed(pending.first(pending.size() - 1));
  std::vector<uint8_t> buf(64);
  EXPECT_EQ(p.client.read(buf), 0u);
  EXPECT_FALSE(p.client.peer_closed());
  EXPECT_FALSE(p.client.failed());
}

}  // namespace
}  // namespace tls_test
