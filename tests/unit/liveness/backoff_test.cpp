// Reconnect backoff on literal times and injected random bits.
#include "liveness/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace {

using namespace std::chrono_literals;
using tether::Cause;
using tether::CloseInfo;
using tether::liveness::Backoff;
using tether::liveness::BackoffConfig;
using tether::liveness::Duration;
using tether::liveness::TimePoint;

const TimePoint t0 = TimePoint{} + 100h;

TEST(Backoff, ExtremesOfTheJitterRangeDoubleUpToTheCap) {
  // Random bits 0 give the floor; bits that hit the top of the range give the ceiling.
  BackoffConfig c;  // 500 ms .. 30 s
  Backoff lo(c), hi(c);
  const std::vector<Duration> ceilings = {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
  for (auto ceiling : ceilings) {
    EXPECT_EQ(*lo.next_delay(0), 500ms);
    const auto span = static_cast<uint64_t>((ceiling - 500ms).count());
    EXPECT_EQ(*hi.next_delay(span), ceiling);
  }
  EXPECT_EQ(lo.attempt(), ceilings.size());
}

TEST(Backoff, StaysRandomAtTheCap) {
  // 10,000 clients at attempt 20: delays spread over [min, max], never piled on max.
  std::mt19937_64 rng(42);
  std::vector<Duration> delays;
  for (int i = 0; i < 10000; ++i) {
    Backoff b({});
    Duration d{};
    for (int a = 0; a < 20; ++a) d = *b.next_delay(rng());
    delays.push_back(d);
  }
  auto [mn, mx] = std::minmax_element(delays.begin(), delays.end());
  EXPECT_GE(*mn, 500ms);
  EXPECT_LE(*mx, 30s);
  const auto at_max = std::count(delays.begin(), delays.end(), Duration(30s));
  EXPECT_LT(at_max, 5);
  // Roughly uniform: each tenth of the range holds 6-14% of the clients.
  for (int decile = 0; decile < 10; ++decile) {
    const Duration lo = 500ms + (29500ms * decile) / 10, hi = 500ms + (29500ms * (decile + 1)) / 10;
    const auto n =
        std::count_if(delays.begin(), delays.end(), [&](Duration d) { return d >= lo && d < hi; });
    EXPECT_GT(n, 600) << "decile " << decile;
    EXPECT_LT(n, 1400) << "decile " << decile;
  }
}

TEST(Backoff, MaxAttemptsEndsTheSequence) {
  BackoffConfig c;
  c.max_attempts = 3;
  Backoff b(c);
  EXPECT_TRUE(b.next_delay(1));
  EXPECT_TRUE(b.next_delay(1));
  EXPECT_TRUE(b.next_delay(1));
  EXPECT_FALSE(b.next_delay(1));
}

TEST(Backoff, CounterResetsOnlyAfterAStableConnection) {
  Backoff b({});  // reset_after 10 s
  b.next_delay(0);
  b.next_delay(0);
  b.opened(t0);
  b.closed(t0 + 9s);  // flapping: keep backing off
  EXPECT_EQ(b.attempt(), 2u);
  b.next_delay(0);
  b.opened(t0 + 20s);
  b.closed(t0 + 30s);  // stayed up 10 s: start over
  EXPECT_EQ(b.attempt(), 0u);
  EXPECT_EQ(*b.next_delay(500'000'000), 1s);  // attempt 1 again: ceiling 1 s
}

TEST(Backoff, ServerSuggestedDelayIsHonouredWithJitter) {
  Backoff b({});
  EXPECT_EQ(*b.suggested_delay(4200ms, 0), 4200ms);
  EXPECT_EQ(*b.suggested_delay(4200ms, 500'000'000), 4700ms);  // + up to backoff-min
  EXPECT_EQ(b.attempt(), 2u);
}

TEST(ReconnectPolicy, DefaultsPerCloseCodeAndCause) {
  auto remote = [](uint16_t code) { return CloseInfo{code, "", true, Cause::remote_close}; };
  for (uint16_t code : {1001, 1011, 1012, 1013})
    EXPECT_TRUE(tether::liveness::default_should_reconnect(remote(code))) << code;
  for (uint16_t code : {1000, 1008, 1002, 1003, 4000})
    EXPECT_FALSE(tether::liveness::default_should_reconnect(remote(code))) << code;
  for (Cause c : {Cause::network_error, Cause::heartbeat_timeout, Cause::connect_failed,
                  Cause::handshake_timeout, Cause::handshake_failed})
    EXPECT_TRUE(tether::liveness::default_should_reconnect({1006, "", false, c}));
  EXPECT_FALSE(tether::liveness::default_should_reconnect({1000, "", true, Cause::local_close}));
  EXPECT_FALSE(tether::liveness::default_should_reconnect({1006, "", false, Cause::local_close}));
  EXPECT_FALSE(
      tether::liveness::default_should_reconnect({1002, "", false, Cause::protocol_error}));
}

TEST(ReconnectPolicy, SuggestedDelayParsedFromRestartReason) {
  using tether::liveness::suggested_reconnect_delay;
  EXPECT_EQ(suggested_reconnect_delay(1012, "server restart; reconnect in 1234ms"), 1234ms);
  EXPECT_EQ(suggested_reconnect_delay(1013, "overloaded; reconnect in 50ms"), 50ms);
  EXPECT_FALSE(suggested_reconnect_delay(1001, "reconnect in 1234ms"));
  EXPECT_FALSE(suggested_reconnect_delay(1012, "server restart"));
  EXPECT_FALSE(suggested_reconnect_delay(1012, "reconnect in 12s"));
  EXPECT_FALSE(suggested_reconnect_delay(1012, "reconnect in ms"));
  EXPECT_EQ(suggested_reconnect_delay(1012, "reconnect in 99999999999ms"), 3600000ms);
}

}  // namespace
