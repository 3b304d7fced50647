// limits::TokenBucket on literal times (no clock): the burst, the refill rate, the cap on saved
// tokens, next_token(), time going backwards, and rate 0 meaning unlimited.
#include "limits/token_bucket.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using namespace std::chrono_literals;
using tether::limits::TokenBucket;
using tether::loop::TimePoint;

const TimePoint t0 = TimePoint{} + 1h;

TEST(TokenBucket, BurstThenRefillAtTheRate) {
  TokenBucket b(10, 5, t0);  // 10 per second, 5 saved at most
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(t0)) << i;
  EXPECT_FALSE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 99ms));  // 0.99 of a token
  EXPECT_TRUE(b.take(t0 + 100ms));
  EXPECT_FALSE(b.take(t0 + 100ms));
  // One second refills 10 tokens, but only 5 are kept.
  int taken = 0;
  while (b.take(t0 + 1100ms)) ++taken;
  EXPECT_EQ(taken, 5);
}

TEST(TokenBucket, NextTokenSaysWhen) {
  TokenBucket b(4, 1, t0);
  EXPECT_EQ(b.next_token(t0), t0);  // one is there
  EXPECT_TRUE(b.take(t0));
  const TimePoint next = b.next_token(t0);
  EXPECT_EQ(next, t0 + 250ms);
  EXPECT_FALSE(b.take(next - 1ms));
  EXPECT_TRUE(b.take(next));
}

TEST(TokenBucket, TimeGoingBackwardsAddsNothing) {
  TokenBucket b(1, 1, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 - 10s));
  EXPECT_FALSE(b.take(t0 + 999ms));
  EXPECT_TRUE(b.take(t0 + 1s));
}

TEST(TokenBucket, RateZeroIsUnlimited) {
  TokenBucket unlimited(0, 0, t0);
  EXPECT_TRUE(unlimited.unlimited());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.take(t0));
  EXPECT_EQ(unlimited.next_token(t0), t0);
  TokenBucket default_made;
  EXPECT_TRUE(default_made.take(t0));
}

// limits::RateState (GCRA, 8 bytes per connection, parameters shared in a RateLimit): the same
// decisions as a TokenBucket with the same rate and burst.
using tether::limits::RateLimit;
using tether::limits::RateState;

TEST(RateState, BurstThenTheRate) {
  const RateLimit limit(10, 5);
  RateState s;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.take(limit, t0)) << i;
  EXPECT_FALSE(s.take(limit, t0));
  EXPECT_FALSE(s.take(limit, t0 + 99ms));
  EXPECT_TRUE(s.take(limit, t0 + 100ms));
  EXPECT_FALSE(s.take(limit, t0 + 100ms));
  int taken = 0;
  while (s.take(limit, t0 + 1100ms)) ++taken;
  EXPECT_EQ(taken, 5);  // a long pause saves up no more than the burst
}

TEST(RateState, UnlimitedAndTimeGoingBackwards) {
  RateState s;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(s.take(RateLimit(), t0));
  const RateLimit one(1, 1);
  RateState r;
  EXPECT_TRUE(r.take(one, t0));
  EXPECT_FALSE(r.take(one, t0 - 10s));
  EXPECT_FALSE(r.take(one, t0 + 999ms));
  EXPECT_TRUE(r.take(one, t0 + 1s));
}

// Over a long random sequence both allow the same events, but for the odd one exactly on a
// token boundary, where the bucket's floating-point refill and GCRA's integer nanoseconds may
// round differently (and the next event then evens it out).
TEST(RateState, DecidesAsATokenBucketDoes) {
  int denied = 0;
  for (unsigned rate : {1u, 7u, 50u, 2000u}) {
    for (unsigned burst : {1u, 3u, 50u}) {
      TokenBucket bucket(rate, burst, t0);
      const RateLimit limit(rate, burst);
      RateState state;
      TimePoint now = t0;
      uint32_t x = 12345u + rate * 31u + burst;
      int allowed_state = 0, allowed_bucket = 0, differ = 0;
      for (int i = 0; i < 5000; ++i) {
        x = x * 1664525u + 1013904223u;  // an LCG: steps of 0..~2 intervals, often 0
        now += std::chrono::microseconds((x >> 8) % (2'000'000 / rate + 1)) * ((x & 3) != 0);
        const bool a = state.take(limit, now), b = bucket.take(now);
        allowed_state += a;
        allowed_bucket += b;
        differ += a != b;
      }
      EXPECT_LE(std::abs(allowed_state - allowed_bucket), 1)
          << "rate " << rate << " burst " << burst;
      EXPECT_LE(differ, 50) << "rate " << rate << " burst " << burst;
      EXPECT_GT(allowed_state, 0);
      denied += 5000 - allowed_state;
    }
  }
  EXPECT_GT(denied, 10000);  // the limits did bite
}

}  // namespace
