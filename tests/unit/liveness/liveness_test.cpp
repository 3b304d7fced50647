// Heartbeat and deadline logic on literal times: no clock, no sleeping.
#include "liveness/liveness.hpp"

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using tether::liveness::Action;
using tether::liveness::Config;
using tether::liveness::Liveness;
using tether::liveness::TimePoint;

const TimePoint t0 = TimePoint{} + 100h;

Config heartbeat(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  Config c;
  c.ping_interval = interval;
  c.ping_timeout = timeout;
  return c;
}

TEST(Heartbeat, PingAfterIntervalWithoutOutboundTraffic) {
  const Config cfg = heartbeat(1000ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  EXPECT_EQ(l.next_deadline(), t0 + 1000ms);
  EXPECT_EQ(l.check(t0 + 999ms), Action::none);
  EXPECT_EQ(l.check(t0 + 1000ms), Action::send_ping);
}

TEST(Heartbeat, OutboundTrafficPostponesThePingButInboundDoesNot) {
  const Config cfg = heartbeat(1000ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  // Only the peer talks: we must still ping on schedule so our direction is fed too.
  for (auto t = t0 + 100ms; t < t0 + 1000ms; t += 100ms) l.received(t);
  EXPECT_EQ(l.check(t0 + 1000ms), Action::send_ping);
  // Both talk: our data at 1000 ms moves the next ping to a full interval after it.
  l.sent(t0 + 1000ms);
  for (auto t = t0 + 1000ms; t < t0 + 2000ms; t += 100ms) l.received(t);
  EXPECT_EQ(l.next_deadline(), t0 + 2000ms);
  EXPECT_EQ(l.check(t0 + 1999ms), Action::none);
  EXPECT_EQ(l.check(t0 + 2000ms), Action::send_ping);
}

TEST(Heartbeat, DeathExactlyAtIntervalPlusTimeoutAfterLastReceive) {
  const Config cfg = heartbeat(1000ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  ASSERT_EQ(l.check(t0 + 1000ms), Action::send_ping);
  l.pinged(t0 + 1000ms);
  EXPECT_EQ(l.next_deadline(), t0 + 2000ms);
  EXPECT_EQ(l.check(t0 + 2000ms - 1ns), Action::none);
  EXPECT_EQ(l.check(t0 + 2000ms), Action::heartbeat_timeout);
}

TEST(Heartbeat, AnyInboundFrameCountsAsLife) {
  const Config cfg = heartbeat(1000ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  l.pinged(t0 + 1000ms);
  l.received(t0 + 1500ms);  // a pong, a ping or data: all the same here
  EXPECT_EQ(l.check(t0 + 2000ms), Action::send_ping);
  l.pinged(t0 + 2000ms);
  EXPECT_EQ(l.check(t0 + 3000ms), Action::send_ping);
  l.pinged(t0 + 3000ms);
  EXPECT_EQ(l.check(t0 + 3499ms), Action::none);
  EXPECT_EQ(l.check(t0 + 3500ms), Action::heartbeat_timeout);  // 1500 + 1000 + 1000
}

TEST(Heartbeat, ZeroIntervalDisables) {
  const Config cfg = heartbeat(0ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  EXPECT_EQ(l.next_deadline(), TimePoint::max());
  EXPECT_EQ(l.check(t0 + 10h), Action::none);
}

TEST(Deadlines, HandshakeTimeout) {
  Config c;
  c.handshake_timeout = 10s;
  Liveness l(c, t0);
  EXPECT_EQ(l.next_deadline(), t0 + 10s);
  EXPECT_EQ(l.check(t0 + 9999ms), Action::none);
  EXPECT_EQ(l.check(t0 + 10s), Action::handshake_timeout);
  l.opened(t0 + 1s);
  EXPECT_EQ(l.check(t0 + 10s), Action::none);
}

TEST(Deadlines, IdleTimeoutCountsOnlyMessages) {
  Config c = heartbeat(1000ms, 1000ms);
  c.idle_timeout = 5s;
  Liveness l(c, t0);
  l.opened(t0);
  for (auto t = t0 + 1s; t < t0 + 5s; t += 1s) {  // pings and pongs keep the heartbeat happy
    l.pinged(t);
    l.received(t);
  }
  EXPECT_EQ(l.check(t0 + 5s), Action::idle_timeout);
  l.message(t0 + 5s);
  EXPECT_EQ(l.check(t0 + 5s), Action::send_ping);
}

TEST(Deadlines, CloseTimeoutAfterOurClose) {
  Config c = heartbeat(25s, 20s);
  c.close_timeout = 5s;
  Liveness l(c, t0);
  l.opened(t0);
  l.closing(t0 + 1s);
  EXPECT_EQ(l.next_deadline(), t0 + 6s);
  EXPECT_EQ(l.check(t0 + 5999ms), Action::none);
  EXPECT_EQ(l.check(t0 + 6s), Action::close_timeout);
  l.done();
  EXPECT_EQ(l.next_deadline(), TimePoint::max());
}

TEST(Rtt, PongOfOurPingGivesTheRoundTrip) {
  uint8_t p[tether::liveness::ping_payload_size];
  tether::liveness::encode_ping(7, t0, p);
  auto rtt = tether::liveness::rtt_from_pong(p, t0 + 420us);
  ASSERT_TRUE(rtt.has_value());
  EXPECT_EQ(*rtt, 420us);
}

TEST(Rtt, ForeignOrFuturePongsGiveNothing) {
  uint8_t p[tether::liveness::ping_payload_size];
  tether::liveness::encode_ping(7, t0 + 1s, p);
  EXPECT_FALSE(tether::liveness::rtt_from_pong(p, t0).has_value());  // from the future
  const uint8_t other[] = {'h', 'i'};
  EXPECT_FALSE(tether::liveness::rtt_from_pong(other, t0).has_value());
  EXPECT_FALSE(tether::liveness::rtt_from_pong({}, t0).has_value());
}

}  // namespace

namespace {

// A peer that only listens (a browser page receiving a broadcast) never sends on its own: while
// we stream to it, it must still be asked for a pong once per interval, or it would be judged
// dead at interval + timeout although it is alive.
TEST(Heartbeat, ListenOnlyPeerIsPingedWhileWeKeepSending) {
  const Config cfg = heartbeat(1000ms, 1000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  for (auto t = t0 + 100ms; t < t0 + 1000ms; t += 100ms) {
    l.sent(t);  // we stream every 100 ms
    EXPECT_EQ(l.check(t), Action::none);
  }
  EXPECT_EQ(l.next_deadline(), t0 + 1000ms);
  EXPECT_EQ(l.check(t0 + 1000ms), Action::send_ping);  // nothing received for an interval
  l.pinged(t0 + 1000ms);
  EXPECT_EQ(l.check(t0 + 1000ms), Action::none);  // one ping per interval, not per tick
  l.sent(t0 + 1100ms);
  EXPECT_EQ(l.check(t0 + 1500ms), Action::none);
  l.received(t0 + 1001ms);  // the pong
  EXPECT_EQ(l.check(t0 + 1999ms), Action::none);
  EXPECT_EQ(l.check(t0 + 2001ms), Action::send_ping);  // next round, still alive
  l.pinged(t0 + 2001ms);
  EXPECT_EQ(l.check(t0 + 3000ms), Action::none);
  EXPECT_EQ(l.check(t0 + 3001ms), Action::heartbeat_timeout);  // no pong to the second ping
}

TEST(Heartbeat, SilentPeerGetsOnePingPerIntervalNotPerTick) {
  const Config cfg = heartbeat(1000ms, 3000ms);
  Liveness l(cfg, t0);
  l.opened(t0);
  int pings = 0;
  for (auto t = t0; t < t0 + 3990ms; t += 10ms) {  // a 10 ms tick
    if (l.check(t) == Action::send_ping) {
      ++pings;
      l.pinged(t);
    }
  }
  EXPECT_EQ(pings, 3);  // at 1 s, 2 s and 3 s
  EXPECT_EQ(l.check(t0 + 4000ms), Action::heartbeat_timeout);
}

}  // namespace
