// DESIGN habit 7: steady traffic allocates nothing per message. Counts every operator new in
// this binary while two online endpoints exchange messages through reused buffers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>

#include "resume/endpoint.hpp"
#include "resume_harness.hpp"

namespace {
std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace resume_test;
using tether::resume::Config;
using tether::resume::Endpoint;
using tether::resume::Received;

// Holds the last frame written, in a buffer that is reused.
struct Slot {
  MessageType type = MessageType::text;
  std::vector<uint8_t> bytes;
  bool full = false;
  void operator()(MessageType t, std::span<const uint8_t> b) {
    type = t;
    bytes.assign(b.begin(), b.end());
    full = true;
  }
};

TEST(Allocation, SteadyRequestResponseTrafficAllocatesNothingPerMessage) {
  Endpoint a{Config{}}, b{Config{}};
  Slot ab, ba;
  ab.bytes.reserve(256);
  ba.bytes.reserve(256);
  a.go_online(0, ab);
  b.go_online(0, ba);
  const std::string payload(100, 'p');
  TimePoint now = t0;
  auto round = [&] {
    a.send(MessageType::binary, bytes_of(payload), now, ab);
    Received r = b.receive(ab.type, ab.bytes, now, ba);
    ASSERT_EQ(r.kind, Received::Kind::deliver);
    b.send(MessageType::text, r.payload, now, ba);  // the reply carries the ack
    r = a.receive(ba.type, ba.bytes, now, ab);
    ASSERT_EQ(r.kind, Received::Kind::deliver);
    now += std::chrono::milliseconds(1);
    a.on_timer(now, ab);
    b.on_timer(now, ba);
  };
  const std::size_t start = allocations;
  for (int i = 0; i < 1000; ++i) round();  // rings and buffers reach their working size
  const std::size_t before = allocations;
  ASSERT_GT(before, start);  // the counter does see the warm-up
  for (int i = 0; i < 10000; ++i) round();
  EXPECT_EQ(allocations - before, 0u);
  EXPECT_EQ(a.stats().delivered, 11000u);
  EXPECT_LE(a.window().size(), 1u);
}

TEST(Allocation, OneWayStreamWithStandaloneAcksAllocatesNothingPerMessage) {
  Endpoint a{Config{}}, b{Config{}};
  Slot ab, ba;
  ab.bytes.reserve(256);
  ba.bytes.reserve(256);
  a.go_online(0, ab);
  b.go_online(0, ba);
  const std::string payload(200, 'q');
  TimePoint now = t0;
  auto message = [&] {
    a.send(MessageType::text, bytes_of(payload), now, ab);
    ba.full = false;
    ASSERT_EQ(b.receive(ab.type, ab.bytes, now, ba).kind, Received::Kind::deliver);
    if (ba.full) {
      ASSERT_EQ(a.receive(ba.type, ba.bytes, now, ab).kind, Received::Kind::ack);
    }
  };
  for (int i = 0; i < 1000; ++i) message();
  const std::size_t before = allocations;
  for (int i = 0; i < 10000; ++i) message();
  EXPECT_EQ(allocations - before, 0u);
  EXPECT_LT(a.window().size(), 64u);  // every 64th message is acknowledged at once
}

}  // namespace
