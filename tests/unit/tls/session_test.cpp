// Session: handshake, ALPN, SNI, data both ways in any chunking, writes before the handshake,
// close_notify. Two Sessions joined in memory (tls_harness.hpp).
#include "tls/tls.hpp"

#include <gtest/gtest.h>

#include "tls_harness.hpp"

namespace tls_test {
namespace {

TEST(TlsSession, HandshakeCompletesWithTls13AndAlpnHttp11) {
  Pair p;
  EXPECT_FALSE(p.client.handshake_done());
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.client.error() << " / " << p.server.error();
  EXPECT_FALSE(p.client.failed());
  EXPECT_FALSE(p.server.failed());
  EXPECT_EQ(p.client.protocol_version(), "TLSv1.3");
  EXPECT_EQ(p.client.alpn(), "http/1.1");
  EXPECT_EQ(p.server.alpn(), "http/1.1");
  EXPECT_TRUE(p.client.pending().empty());
  EXPECT_TRUE(p.server.pending().empty());
}

TEST(TlsSession, HandshakeCompletesOverTls12) {
  Pair p(client_ctx(), tls12(server_ctx()));
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.client.error() << " / " << p.server.error();
  EXPECT_EQ(p.server.protocol_version(), "TLSv1.2");
  EXPECT_EQ(p.client.alpn(), "http/1.1");
}

TEST(TlsSession, ClientHelloIsPendingRightAfterConstruction) {
  Session client(client_ctx(), false, "localhost");
  auto hello = client.pending();
  ASSERT_GE(hello.size(), 5u);
  EXPECT_EQ(hello[0], 0x16);  // handshake record (RFC 8446 §5.1)
  Session server(server_ctx(), true);
  EXPECT_TRUE(server.pending().empty());  // the server speaks second
}

TEST(TlsSession, Rfc6066_3_SniCarriesTheHostName) {
  Pair p(client_ctx(), server_ctx(), "localhost.");  // the trailing dot is not sent
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.client.error();
  EXPECT_EQ(p.server.server_name(), "localhost");
}

TEST(TlsSession, Rfc6066_3_IpLiteralsAreNotSentAsSniButAreVerified) {
  for (const char* host : {"127.0.0.1", "::1", "[::1]"}) {
    Pair p(client_ctx(), server_ctx(), host);
    p.pump();
    ASSERT_TRUE(p.both_done()) << host << ": " << p.client.error();
    EXPECT_EQ(p.server.server_name(), "") << host;
  }
}

TEST(TlsSession, PlaintextFlowsBothWays) {
  Pair p;
  p.pump();
  ASSERT_TRUE(p.both_done());
  ASSERT_TRUE(p.client.write(bytes("hello server")));
  ASSERT_TRUE(p.server.write(bytes("hello client")));
  p.pump();
  EXPECT_EQ(p.server_got, "hello server");
  EXPECT_EQ(p.client_got, "hello client");
}

TEST(TlsSession, OneMebibyteEachWayInOneWrite) {
  for (bool v12 : {false, true}) {
    Pair p(client_ctx(), v12 ? tls12(server_ctx()) : server_ctx());
    const std::string up = payload(1 << 20, 7), down = payload(1 << 20, 9);
    ASSERT_TRUE(p.client.write(bytes(up)));
    ASSERT_TRUE(p.server.write(bytes(down)));
    p.pump();
    ASSERT_TRUE(p.both_done());
    EXPECT_TRUE(p.server_got == up) << "v1.2=" << v12 << " got " << p.server_got.size();
    EXPECT_TRUE(p.client_got == down) << "v1.2=" << v12 << " got " << p.client_got.size();
  }
}

// Written before the handshake completes (the client's HTTP upgrade request goes right after
// connect): kept, encrypted once the handshake is done, delivered in order.
TEST(TlsSession, WritesBeforeTheHandshakeArriveInOrder) {
  for (bool v12 : {false, true}) {
    Pair p(client_ctx(), v12 ? tls12(server_ctx()) : server_ctx());
    ASSERT_TRUE(p.client.write(bytes("GET /chat HTTP/1.1\r\n")));
    ASSERT_TRUE(p.client.write(bytes("Host: localhost\r\n\r\n")));
    ASSERT_TRUE(p.server.write(bytes("early ")));  // a server may also write first
    // One step at a time: the ClientHello, then the server's flight; nothing decrypted yet.
    p.transfer(p.client, p.server, p.server_got);
    EXPECT_FALSE(p.server.handshake_done());
    ASSERT_TRUE(p.server.write(bytes("words")));
    p.pump();
    ASSERT_TRUE(p.both_done());
    EXPECT_EQ(p.server_got, "GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\n") << "v1.2=" << v12;
    EXPECT_EQ(p.client_got, "early words") << "v1.2=" << v12;
    ASSERT_TRUE(p.client.write(bytes("after")));
    p.pump();
    EXPECT_EQ(p.server_got, "GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\nafter");
  }
}

// The caller feeds whatever recv() returned: any split of the ciphertext, including one byte at
// a time and pieces straddling record boundaries, gives the same plaintext.
class TlsChunked : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TlsChunked, AnySplitOfTheCiphertextGivesTheSamePlaintext) {
  for (bool v12 : {false, true}) {
    Pair p(client_ctx(), v12 ? tls12(server_ctx()) : server_ctx());
    p.chunk = GetParam();
    p.read_size = GetParam() % 2 == 1 ? 7 : 4096;  // small read buffers too
    const std::string up = payload(40000, 3), down = payload(70000, 4);
    ASSERT_TRUE(p.client.write(bytes(up.substr(0, 100))));  // some before the handshake
    p.pump();
    ASSERT_TRUE(p.both_done()) << p.client.error() << " / " << p.server.error();
    ASSERT_TRUE(p.client.write(bytes(up.substr(100))));
    ASSERT_TRUE(p.server.write(bytes(down)));
    p.pump();
    EXPECT_TRUE(p.server_got == up) << "chunk " << GetParam() << " v1.2=" << v12;
    EXPECT_TRUE(p.client_got == down) << "chunk " << GetParam() << " v1.2=" << v12;
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, TlsChunked,
                         ::testing::Values(1, 2, 3, 5, 7, 100, 1000, 4096, 16384, 16389, 16406,
                                           65536));

// The socket accepts part of pending() while the application keeps writing: pending() stays
// the exact unsent suffix and the buffer is compacted rather than growing with everything sent.
TEST(TlsSession, PartialConsumesInterleavedWithWrites) {
  Pair p;
  p.pump();
  ASSERT_TRUE(p.both_done());
  std::string sent;
  for (int i = 0; i < 2000; ++i) {
    const std::string msg = payload(100 + i % 900, static_cast<uint32_t>(i));
    ASSERT_TRUE(p.server.write(bytes(msg)));
    sent += msg;
    auto pending = p.server.pending();
    const std::size_t n = pending.size() / 2 + 1;  // the "socket" takes half
    p.client.feed(pending.first(n));
    p.server.consume(n);
    p.drain(p.client, p.client_got);
  }
  p.pump();
  EXPECT_TRUE(p.client_got == sent) << p.client_got.size() << " of " << sent.size();
}

TEST(TlsSession, Rfc8446_6_1_CloseNotifyIsAnOrderlyEnd) {
  Pair p;
  p.pump();
  ASSERT_TRUE(p.both_done());
  ASSERT_TRUE(p.client.write(bytes("last words")));
  p.client.shutdown();
  EXPECT_FALSE(p.client.write(bytes("too late")));
  p.pump();
  EXPECT_EQ(p.server_got, "last words");
  EXPECT_TRUE(p.server.peer_closed());
  EXPECT_FALSE(p.server.failed());
  EXPECT_FALSE(p.client.peer_closed());
  // Half-close: the server may still answer before its own close_notify.
  ASSERT_TRUE(p.server.write(bytes("bye")));
  p.server.shutdown();
  p.pump();
  EXPECT_EQ(p.client_got, "bye");
  EXPECT_TRUE(p.client.peer_closed());
  EXPECT_FALSE(p.client.failed());
  std::vector<uint8_t> buf(64);
  EXPECT_EQ(p.server.read(buf), 0u);
}

TEST(TlsSession, ShutdownBeforeTheHandshakeIsSentAfterQueuedWrites) {
  Pair p;
  ASSERT_TRUE(p.client.write(bytes("queued")));
  p.client.shutdown();
  p.pump();
  ASSERT_TRUE(p.both_done());
  EXPECT_EQ(p.server_got, "queued");
  EXPECT_TRUE(p.server.peer_closed());
}

TEST(TlsSession, MovedSessionKeepsWorking) {
  Pair p;
  p.transfer(p.client, p.server, p.server_got);  // mid-handshake
  Session moved = std::move(p.server);
  Session again(client_ctx(), false, "localhost");
  again = std::move(moved);  // move-assign over a live session
  p.transfer(again, p.client, p.client_got);
  p.transfer(p.client, again, p.server_got);
  ASSERT_TRUE(again.handshake_done());
  ASSERT_TRUE(p.client.write(bytes("ping")));
  p.transfer(p.client, again, p.server_got);
  EXPECT_EQ(p.server_got, "ping");
}

TEST(TlsSession, ContextOfTheWrongRoleFails) {
  Session s(server_ctx(), false, "localhost");
  EXPECT_TRUE(s.failed());
  EXPECT_FALSE(s.error().empty());
  EXPECT_FALSE(s.write(bytes("x")));
  Session t(nullptr, true);
  EXPECT_TRUE(t.failed());
}

}  // namespace
}  // namespace tls_test
