// limits::TokenBucket on literal times (no clock): the burst, the refill rate, the cap on saved
// tokens, next_token(), time going backwards, and rate 0 meaning unlimited.
#include "limits/token_bucket.hpp"

#include <gtest/gtest.h>

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

}  // namespace
