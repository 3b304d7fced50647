// loop::BufferPool and its use by protocol::Connection: an idle connection holds no send-queue
// or message buffer (they go back to the loop's pool as soon as their bytes are gone), the pool
// stays within its bounds, and a split control frame is gathered correctly without one.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "connection_harness.hpp"
#include "loop/buffer_pool.hpp"
#include "protocol/connection.hpp"

namespace tether_conn_test {
namespace {

using tether::loop::BufferPool;
using tether::loop::BufferPools;
using tether::loop::MessageBuffer;
using tether::protocol::CountingRandom;

TEST(BufferPool, GivesBackTheLastBufferGivenWithItsCapacityAndEmpty) {
  BufferPool<MessageBuffer> pool(4, 1 << 20);
  MessageBuffer a(100, 1), b(300, 2);
  const auto* b_data = b.data();
  pool.give(a);
  pool.give(b);
  EXPECT_EQ(a.capacity(), 0u);  // the caller keeps nothing
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(pool.bytes(), 400u);
  MessageBuffer t = pool.take();
  EXPECT_EQ(t.data(), b_data);  // LIFO
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.capacity(), 300u);
  EXPECT_EQ(pool.bytes(), 100u);
  pool.take();
  EXPECT_EQ(pool.take().capacity(), 0u);  // empty pool: a fresh buffer
}

TEST(BufferPool, KeepsNoMoreThanItsBounds) {
  BufferPool<MessageBuffer> pool(2, 1000);
  for (int i = 0; i < 5; ++i) {
    MessageBuffer b(400);
    pool.give(b);
    EXPECT_EQ(b.capacity(), 0u);  // freed or kept, never left with the caller
  }
  EXPECT_EQ(pool.size(), 2u);  // the count bound
  EXPECT_EQ(pool.bytes(), 800u);
  BufferPool<MessageBuffer> small(10, 1000);
  MessageBuffer big(2000);
  small.give(big);  // over the byte bound on its own: freed
  EXPECT_EQ(small.size(), 0u);
  EXPECT_EQ(small.bytes(), 0u);
}

TEST(ByteBuffer, GrowsWithoutLosingBytesAndTakesRoomOnlyWithinItsCapacity) {
  tether::loop::ByteBuffer b;
  EXPECT_EQ(b.grow_within(1), nullptr);  // no capacity yet
  b.reserve(8);
  EXPECT_EQ(b.capacity(), 8u);
  uint8_t* p = b.grow_within(5);
  ASSERT_EQ(p, b.data());
  std::memcpy(p, "hello", 5);
  EXPECT_EQ(b.grow_within(4), nullptr);  // 5 + 4 > 8: the caller must resize
  EXPECT_EQ(b.size(), 5u);               // and a refusal takes nothing
  ASSERT_NE(b.grow_within(3), nullptr);  // exactly full
  b.resize(1000);                        // reallocates, keeping what was written
  EXPECT_GE(b.capacity(), 1000u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), 5), "hello");
  tether::loop::ByteBuffer moved(std::move(b));
  // The moved-from buffer holds nothing.
  EXPECT_EQ(b.capacity(), 0u);   // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.data(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.size(), 1000u);
  moved.resize(10);
  moved.shrink_to_fit();
  EXPECT_EQ(moved.capacity(), 10u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(moved.data()), 5), "hello");
  moved.clear();
  moved.shrink_to_fit();
  EXPECT_EQ(moved.capacity(), 0u);
}

struct PooledServer {
  BufferPools pools;
  ConnectionConfig cfg;
  Recorder rec;
  CountingRandom rng{1};
  std::unique_ptr<Connection> conn;
  PooledServer() {
    cfg.role = Role::server;
    cfg.pools = &pools;
    cfg.rng = &rng;
    conn = std::make_unique<Connection>(cfg, rec);
    Bytes req = bytes(kUpgradeRequest);
    conn->receive(req);
    drain();
  }
  void drain() { conn->consume_out(conn->out().size()); }
};

TEST(BufferPool, AnIdleConnectionHoldsNoSendQueueOrMessageBuffer) {
  PooledServer s;
  ASSERT_EQ(s.conn->state(), State::open);
  const std::size_t out_free = BufferPools::kPrewarm, frames_free = BufferPools::kPrewarm;
  // The 101 response went out: its buffer is the pool's again, and between reads the connection
  // holds no read state either.
  EXPECT_EQ(s.pools.out.size(), out_free);
  EXPECT_EQ(s.pools.frames.size(), frames_free);
  // A message in two frames, the second still incomplete: the read state and a message buffer
  // stay with the connection meanwhile...
  Bytes first = masked(kText, "hello ", false), second = masked(kCont, "world");
  Bytes in = cat({first, Bytes(second.begin(), second.begin() + 3)});
  s.conn->receive(in);
  EXPECT_EQ(s.pools.frames.size(), frames_free - 1);
  EXPECT_EQ(s.pools.message.size(), 0u);
  // ...and go back once it is whole.
  Bytes rest(second.begin() + 3, second.end());
  s.conn->receive(rest);
  ASSERT_FALSE(s.rec.events.empty());
  EXPECT_EQ(s.rec.events.back(), ev_text("hello world"));
  EXPECT_EQ(s.pools.frames.size(), frames_free);
  EXPECT_EQ(s.pools.message.size(), 1u);
  // Sending takes a send buffer from the pool; writing it all gives it back.
  s.conn->send_text(std::string(1000, 'x'));
  EXPECT_EQ(s.pools.out.size(), out_free - 1);
  s.drain();
  EXPECT_EQ(s.pools.out.size(), out_free);
}

// Many sends queued with nothing written: each is framed at the back of the queue, through
// every size of the pooled buffer (which starts at 4 KiB and grows), and partial writes in
// between move the queue's front. The bytes are the frames in order, each with a minimal header.
TEST(BufferPool, QueuedFramesStayWholeAndInOrderAsTheQueueGrows) {
  PooledServer s;
  Bytes expected;
  std::size_t written = 0;
  for (std::size_t i = 0; i < 400; ++i) {
    const std::size_t len = i % 7 == 0 ? 126 + i * 150 : i;  // 7-bit and 16-bit lengths
    const Bytes payload = repeat_pattern(len, static_cast<uint8_t>(i));
    const auto type = i % 2 ? Opcode::text : Opcode::binary;
    if (type == Opcode::text)
      ASSERT_TRUE(s.conn->send_text(std::string(payload.begin(), payload.end())));
    else
      ASSERT_TRUE(s.conn->send(Opcode::binary, payload));
    Bytes header = {static_cast<uint8_t>(0x80 | static_cast<uint8_t>(type))};
    if (len < 126) {
      header.push_back(static_cast<uint8_t>(len));
    } else {
      header.insert(header.end(), {126, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    }
    expected = cat({expected, header, payload});
    if (i % 50 == 49) {  // the transport took part of it
      const std::size_t n = s.conn->out().size() / 3;
      ASSERT_TRUE(std::equal(s.conn->out().data(), s.conn->out().data() + n,
                             expected.begin() + static_cast<long>(written)));
      s.conn->consume_out(n);
      written += n;
    }
  }
  ASSERT_EQ(s.conn->out().size(), expected.size() - written);
  EXPECT_TRUE(std::equal(s.conn->out().data(), s.conn->out().data() + s.conn->out().size(),
                         expected.begin() + static_cast<long>(written)));
}

TEST(BufferPool, ControlFrameSplitAcrossReadsIsGatheredAndAnswered) {
  PooledServer s;
  const std::string payload(125, 'p');  // the largest control payload (RFC 6455 5.5)
  Bytes ping = masked(kPing, payload);
  for (std::size_t cut = 1; cut < ping.size(); ++cut) {
    s.rec.events.clear();
    Bytes a(ping.begin(), ping.begin() + static_cast<long>(cut));
    Bytes b(ping.begin() + static_cast<long>(cut), ping.end());
    s.conn->receive(a);
    s.conn->receive(b);
    ASSERT_EQ(s.rec.events.size(), 1u) << "cut at " << cut;
    EXPECT_EQ(s.rec.events[0], ev_ping(bytes(payload))) << "cut at " << cut;
    auto frames = decode_frames({s.conn->out().data(), s.conn->out().size()});
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(str(frames[0].payload), payload);  // the pong echoes it (5.5.2)
    s.drain();
  }
}

}  // namespace
}  // namespace tether_conn_test
