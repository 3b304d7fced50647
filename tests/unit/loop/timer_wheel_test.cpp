// Timer wheel tests: virtual time only, no sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"

namespace tether::loop {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr Duration kTick = milliseconds(10);

struct Counter {
  int fired = 0;
  TimePoint* now = nullptr;  // time being processed, for checks inside callbacks
  std::vector<TimePoint> at;
};

void count_cb(Timer&, void* ctx) {
  auto* c = static_cast<Counter*>(ctx);
  ++c->fired;
  if (c->now != nullptr) c->at.push_back(*c->now);
}

class TimerWheelTest : public ::testing::Test {
 protected:
  VirtualClock clock;
  TimePoint start = clock.now();
  TimerWheel wheel{start, kTick, 64};
};

TEST_F(TimerWheelTest, NeverFiresBeforeDeadline) {
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(25));
  EXPECT_TRUE(t.armed());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(start + milliseconds(24)), 0u);
  EXPECT_EQ(wheel.advance(start + milliseconds(25) - nanoseconds(1)), 0u);
  // Rounded up to the 30 ms tick boundary: late by less than one tick, never early.
  EXPECT_EQ(wheel.advance(start + milliseconds(29)), 0u);
  EXPECT_EQ(wheel.advance(start + milliseconds(30)), 1u);
  EXPECT_EQ(c.fired, 1);
  EXPECT_FALSE(t.armed());
  EXPECT_EQ(wheel.size(), 0u);
}

TEST_F(TimerWheelTest, DeadlineOnTickBoundaryFiresExactlyThere) {
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(40));
  EXPECT_EQ(wheel.advance(start + milliseconds(40) - nanoseconds(1)), 0u);
  EXPECT_EQ(wheel.advance(start + milliseconds(40)), 1u);
}

TEST_F(TimerWheelTest, FiresWithinOneTickAfterDeadline) {
  // Sweep deadlines across sub-tick offsets, advancing 1 ms at a time.
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    VirtualClock vc;
    TimerWheel w(vc.now(), kTick, 16);
    Counter c;
    Timer t(count_cb, &c);
    const TimePoint deadline = vc.now() + nanoseconds(rng() % 2'000'000'000);
    w.schedule(t, deadline);
    for (int i = 0; i < 3000 && c.fired == 0; ++i) {
      vc.advance(milliseconds(1));
      w.advance(vc.now());
      if (vc.now() < deadline) {
        ASSERT_EQ(c.fired, 0);
      }
    }
    ASSERT_EQ(c.fired, 1);
    EXPECT_GE(vc.now(), deadline);
    EXPECT_LT(vc.now(), deadline + kTick);
  }
}

TEST_F(TimerWheelTest, PastDeadlineFiresOnNextAdvance) {
  wheel.advance(start + milliseconds(105));
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(101));  // past, and inside the current tick
  EXPECT_LE(wheel.next_wakeup(), start + milliseconds(105));
  EXPECT_EQ(wheel.advance(start + milliseconds(105)), 1u);  // same now: still fires
  Timer before_start(count_cb, &c);
  wheel.schedule(before_start, start - hours(1));
  EXPECT_EQ(wheel.advance(start + milliseconds(106)), 1u);
  EXPECT_EQ(c.fired, 2);
}

TEST_F(TimerWheelTest, CancelAndDestructorCancel) {
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(50));
  wheel.cancel(t);
  wheel.cancel(t);  // idempotent
  EXPECT_FALSE(t.armed());
  {
    Timer scoped(count_cb, &c);
    wheel.schedule(scoped, start + milliseconds(50));
    EXPECT_EQ(wheel.size(), 1u);
  }
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next_wakeup(), TimePoint::max());
  EXPECT_EQ(wheel.advance(start + hours(1)), 0u);
  EXPECT_EQ(c.fired, 0);
}

TEST_F(TimerWheelTest, ATimerMovedToAnotherWheelLeavesTheFirst) {
  TimerWheel other(start, milliseconds(10));
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(50));
  other.schedule(t, start + milliseconds(70));
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.next_wakeup(), TimePoint::max());
  EXPECT_FALSE(other.empty());
  EXPECT_EQ(wheel.advance(start + hours(1)), 0u);
  EXPECT_EQ(other.advance(start + milliseconds(70)), 1u);
  EXPECT_EQ(c.fired, 1);
  EXPECT_TRUE(other.empty());
}

// The node without context (what a connection uses): it fires through its function pointer
// and the owner finds itself from the node; destroyed armed, it unlinks itself.
TEST_F(TimerWheelTest, BareNodeFiresItsFunctionAndUnlinksOnDestruction) {
  struct Owner : tether::loop::TimerBase {
    Owner() : TimerBase([](TimerBase& b) { ++static_cast<Owner&>(b).fired; }) {}
    int fired = 0;
  };
  Owner o;
  wheel.schedule(o, start + milliseconds(30));
  EXPECT_TRUE(o.armed());
  EXPECT_FALSE(wheel.fires_after(o, start + milliseconds(30)));  // same tick: no earlier
  EXPECT_TRUE(wheel.fires_after(o, start + milliseconds(10)));
  EXPECT_EQ(wheel.advance(start + milliseconds(30)), 1u);
  EXPECT_EQ(o.fired, 1);
  EXPECT_FALSE(o.armed());
  {
    Owner gone;
    wheel.schedule(gone, start + milliseconds(60));
    wheel.schedule(o, start + milliseconds(60));
    wheel.cancel(gone);
  }
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(start + milliseconds(60)), 1u);
  EXPECT_EQ(o.fired, 2);
}

TEST_F(TimerWheelTest, RescheduleMovesDeadline) {
  Counter c;
  Timer t(count_cb, &c);
  wheel.schedule(t, start + milliseconds(50));
  wheel.schedule(t, start + milliseconds(500));
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(start + milliseconds(100)), 0u);
  wheel.schedule(t, start + milliseconds(120));
  EXPECT_EQ(wheel.advance(start + milliseconds(500)), 1u);
  EXPECT_EQ(t.deadline(), start + milliseconds(120));
}

struct Periodic {
  TimerWheel* wheel;
  Duration period;
  int fired = 0;
};

void periodic_cb(Timer& t, void* ctx) {
  auto* p = static_cast<Periodic*>(ctx);
  ++p->fired;
  p->wheel->schedule(t, t.deadline() + p->period);
}

TEST_F(TimerWheelTest, RearmFromOwnCallback) {
  Periodic p{&wheel, milliseconds(100)};
  Timer t(periodic_cb, &p);
  wheel.schedule(t, start + milliseconds(100));
  for (int i = 1; i <= 50; ++i) {
    clock.advance(milliseconds(100));
    EXPECT_EQ(wheel.advance(clock.now()), 1u) << i;
  }
  EXPECT_EQ(p.fired, 50);
  EXPECT_TRUE(t.armed());
  // Catch-up after a jump: re-arming for a deadline already passed waits for the next advance.
  clock.advance(milliseconds(1000));
  EXPECT_EQ(wheel.advance(clock.now()), 1u);
  EXPECT_EQ(wheel.advance(clock.now()), 1u);
  EXPECT_EQ(p.fired, 52);
}

struct Immediate {
  TimerWheel* wheel;
  TimePoint* now;
  int fired = 0;
};

void rearm_now_cb(Timer& t, void* ctx) {
  auto* s = static_cast<Immediate*>(ctx);
  ++s->fired;
  s->wheel->schedule(t, *s->now);  // due immediately: must not loop within this advance
}

TEST_F(TimerWheelTest, RearmForNowFiresOnNextAdvanceOnly) {
  TimePoint now = start + milliseconds(30);
  Immediate s{&wheel, &now};
  Timer t(rearm_now_cb, &s);
  wheel.schedule(t, start + milliseconds(20));
  EXPECT_EQ(wheel.advance(now), 1u);
  EXPECT_EQ(s.fired, 1);
  EXPECT_LE(wheel.next_wakeup(), now);
  EXPECT_EQ(wheel.advance(now), 1u);
  EXPECT_EQ(s.fired, 2);
  wheel.cancel(t);
}

struct Killer {
  TimerWheel* wheel;
  Timer* victim = nullptr;
  std::unique_ptr<Timer> owned_victim{};
  int fired = 0;
};

void killer_cb(Timer&, void* ctx) {
  auto* k = static_cast<Killer*>(ctx);
  ++k->fired;
  if (k->victim != nullptr) k->wheel->cancel(*k->victim);
  k->owned_victim.reset();  // destroying an armed timer mid-advance cancels it too
}

TEST_F(TimerWheelTest, CallbackCancelsOtherTimers) {
  Killer k{&wheel};
  Counter c;
  Timer killer(killer_cb, &k);
  Timer same_tick(count_cb, &c);
  k.victim = &same_tick;
  k.owned_victim = std::make_unique<Timer>(count_cb, &c);
  Timer later_tick(count_cb, &c);
  wheel.schedule(killer, start + milliseconds(10));
  wheel.schedule(same_tick, start + milliseconds(10));
  wheel.schedule(*k.owned_victim, start + milliseconds(70));  // collected in the same advance
  wheel.schedule(later_tick, start + milliseconds(80));
  EXPECT_EQ(wheel.advance(start + milliseconds(100)), 2u);  // killer + later_tick
  EXPECT_EQ(k.fired, 1);
  EXPECT_EQ(c.fired, 1);
  EXPECT_EQ(wheel.size(), 0u);
}

struct Spawner {
  TimerWheel* wheel;
  Timer* child;
  TimePoint child_deadline;
};

void spawner_cb(Timer&, void* ctx) {
  auto* s = static_cast<Spawner*>(ctx);
  s->wheel->schedule(*s->child, s->child_deadline);
}

TEST_F(TimerWheelTest, CallbackSchedulesAnotherTimer) {
  Counter c;
  Timer child(count_cb, &c);
  Spawner s{&wheel, &child, start + milliseconds(45)};
  Timer parent(spawner_cb, &s);
  wheel.schedule(parent, start + milliseconds(20));
  EXPECT_EQ(wheel.advance(start + milliseconds(30)), 1u);
  EXPECT_TRUE(child.armed());
  EXPECT_EQ(wheel.next_wakeup(), start + milliseconds(50));
  EXPECT_EQ(wheel.advance(start + milliseconds(49)), 0u);
  EXPECT_EQ(wheel.advance(start + milliseconds(50)), 1u);
  EXPECT_EQ(c.fired, 1);
}

void reentrant_cb(Timer&, void* ctx) {
  auto* w = static_cast<TimerWheel*>(ctx);
  EXPECT_EQ(w->advance(TimePoint::max()), 0u);
}

TEST_F(TimerWheelTest, ReentrantAdvanceIsIgnored) {
  Timer t(reentrant_cb, &wheel);
  Counter c;
  Timer far(count_cb, &c);
  wheel.schedule(t, start + milliseconds(10));
  wheel.schedule(far, start + hours(5));
  EXPECT_EQ(wheel.advance(start + milliseconds(10)), 1u);
  EXPECT_EQ(c.fired, 0);
  EXPECT_TRUE(far.armed());
}

struct Ordered {
  const TimePoint* now;
  const TimePoint* prev_now;
  const TimerWheel* wheel;
  TimePoint origin;
  uint64_t last_tick = 0;
  std::size_t fired = 0;
  bool ok = true;
};

struct RandomTimer {
  Timer timer;
  Ordered* log = nullptr;
};

void ordered_cb(Timer& t, void* ctx) {
  auto* log = static_cast<Ordered*>(ctx);
  const Duration tk = log->wheel->tick();
  const auto tick = static_cast<uint64_t>((t.deadline() - log->origin + tk - nanoseconds(1)) / tk);
  const TimePoint boundary = log->origin + tk * static_cast<int64_t>(tick);
  const bool early = t.deadline() > *log->now;
  const bool late = boundary <= *log->prev_now;  // should have fired in an earlier advance
  const bool disorder = tick < log->last_tick;
  if (early || late || disorder) log->ok = false;
  log->last_tick = tick;
  ++log->fired;
}

TEST(TimerWheelStress, HundredThousandRandomTimersFireInOrder) {
  VirtualClock vc;
  const TimePoint origin = vc.now();
  TimerWheel w(origin, kTick, 1024);  // 10.24 s per revolution; deadlines span ~6 of them
  TimePoint now = origin;
  TimePoint prev_now = origin;
  Ordered log{&now, &prev_now, &w, origin};
  constexpr std::size_t kCount = 100'000;
  auto timers = std::make_unique<Timer[]>(kCount);
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < kCount; ++i) {
    timers[i].set_callback(ordered_cb, &log);
    w.schedule(timers[i], origin + nanoseconds(1 + rng() % 60'000'000'000ULL));
  }
  EXPECT_EQ(w.size(), kCount);
  // Mixed steps: sub-tick, multi-tick, and one larger than a whole revolution.
  const Duration steps[] = {milliseconds(3), milliseconds(10), milliseconds(37), milliseconds(250),
                            milliseconds(12'000)};
  for (int i = 0; i < 100'000 && w.size() > 0; ++i) {
    prev_now = now;
    now += steps[rng() % 5];
    const TimePoint wake = w.next_wakeup();
    const std::size_t before = log.fired;
    w.advance(now);
    if (wake > now) {
      ASSERT_EQ(log.fired, before) << "next_wakeup was later than a firing";
    }
    log.last_tick = 0;  // order is checked within each advance call
  }
  EXPECT_EQ(log.fired, kCount);
  EXPECT_TRUE(log.ok);
  EXPECT_EQ(w.next_wakeup(), TimePoint::max());
}

TEST(TimerWheelJump, LongJumpsDoNotWalkEveryTick) {
  VirtualClock vc;
  const TimePoint origin = vc.now();
  TimerWheel w(origin, kTick, 1024);
  TimePoint now = origin;
  TimePoint prev_now = origin;
  Ordered log{&now, &prev_now, &w, origin};
  Timer a(ordered_cb, &log), b(ordered_cb, &log), c(ordered_cb, &log), d(ordered_cb, &log);
  Timer stays(ordered_cb, &log);
  // Armed out of order, in different buckets and revolutions.
  w.schedule(c, origin + hours(5));
  w.schedule(a, origin + milliseconds(1500));
  w.schedule(d, origin + hours(9) + milliseconds(59 * 60'000 + 999));
  w.schedule(b, origin + hours(1));
  w.schedule(stays, origin + hours(10) + milliseconds(1));
  now = origin + hours(10);
  EXPECT_EQ(w.advance(now), 4u);
  EXPECT_TRUE(log.ok);
  EXPECT_TRUE(stays.armed());
  EXPECT_EQ(w.next_wakeup(), origin + hours(10) + milliseconds(10));

  // A 1 ns tick over 1000 hours would be 3.6e15 ticks if walked one by one.
  TimerWheel fine(origin, nanoseconds(1), 256);
  Counter cnt;
  Timer t(count_cb, &cnt);
  fine.schedule(t, origin + hours(500));
  EXPECT_EQ(fine.next_wakeup(), origin + hours(500));
  EXPECT_EQ(fine.advance(origin + hours(1000)), 1u);
}

TEST_F(TimerWheelTest, NextWakeup) {
  EXPECT_EQ(wheel.next_wakeup(), TimePoint::max());
  Counter c;
  Timer a(count_cb, &c), b(count_cb, &c), far(count_cb, &c);
  wheel.schedule(a, start + milliseconds(25));
  EXPECT_EQ(wheel.next_wakeup(), start + milliseconds(30));
  wheel.schedule(b, start + milliseconds(5));
  EXPECT_EQ(wheel.next_wakeup(), start + milliseconds(10));
  wheel.cancel(b);
  EXPECT_LE(wheel.next_wakeup(), start + milliseconds(30));  // conservative after a cancel
  wheel.advance(start + milliseconds(10));
  EXPECT_EQ(wheel.next_wakeup(), start + milliseconds(30));
  wheel.advance(start + milliseconds(30));
  EXPECT_EQ(wheel.next_wakeup(), TimePoint::max());
  // Several revolutions away (64 slots * 10 ms = 640 ms per revolution): still exact.
  wheel.schedule(far, start + milliseconds(3333));
  wheel.advance(start + milliseconds(40));
  EXPECT_EQ(wheel.next_wakeup(), start + milliseconds(3340));
  EXPECT_EQ(wheel.advance(start + milliseconds(3339)), 0u);
  EXPECT_EQ(wheel.advance(start + milliseconds(3340)), 1u);
}

TEST(TimerWheelWakeup, NeverLaterThanEarliestTimer) {
  VirtualClock vc;
  const TimePoint origin = vc.now();
  TimerWheel w(origin, kTick, 32);
  std::mt19937_64 rng(3);
  constexpr int kTimers = 200;
  auto timers = std::make_unique<Timer[]>(kTimers);
  Counter c;
  TimePoint now = origin;
  for (int i = 0; i < kTimers; ++i) timers[i].set_callback(count_cb, &c);
  for (int step = 0; step < 2000; ++step) {
    Timer& t = timers[rng() % kTimers];
    switch (rng() % 3) {
      case 0:
        w.schedule(t, now + milliseconds(rng() % 2000));
        break;
      case 1:
        w.cancel(t);
        break;
      default:
        now += milliseconds(rng() % 40);
        w.advance(now);
    }
    TimePoint earliest = TimePoint::max();
    for (int i = 0; i < kTimers; ++i) {
      if (!timers[i].armed()) continue;
      const Duration tk = kTick;
      const auto rel = std::max(timers[i].deadline() - origin, Duration::zero());
      earliest = std::min(earliest, origin + (rel + tk - nanoseconds(1)) / tk * tk);
    }
    ASSERT_LE(w.next_wakeup(), std::max(earliest, now)) << step;
  }
}

TEST(TimerWheelLifetime, TimerOutlivesWheelAndMovesBetweenWheels) {
  Counter c;
  Timer t(count_cb, &c);
  const TimePoint origin = VirtualClock().now();
  TimerWheel other(origin, kTick, 8);
  {
    TimerWheel w(origin, kTick, 8);
    w.schedule(t, origin + milliseconds(50));
    other.schedule(t, origin + milliseconds(60));  // moves it
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(other.size(), 1u);
    w.schedule(t, origin + milliseconds(70));
  }
  EXPECT_FALSE(t.armed());  // the dying wheel detached it
  EXPECT_EQ(other.size(), 0u);
  EXPECT_EQ(other.advance(origin + hours(1)), 0u);
}

}  // namespace
}  // namespace tether::loop
