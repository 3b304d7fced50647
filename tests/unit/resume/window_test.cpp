// The replay window (docs/resume.md §4): cumulative release, count/byte/age bounds, the losses
// they record, the hold between hello and welcome, and ring storage under wrap and growth.
#include "resume/window.hpp"

#include <gtest/gtest.h>

#include <deque>

#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::ReplayWindow;

struct Stored {
  uint64_t seq;
  MessageType type;
  std::string payload;
  bool operator==(const Stored&) const = default;
};

std::vector<Stored> contents(const ReplayWindow& w, uint64_t after = 0) {
  std::vector<Stored> out;
  w.for_each_after(after, [&](uint64_t seq, MessageType type, std::span<const uint8_t> a,
                              std::span<const uint8_t> b) {
    out.push_back({seq, type, text_of(a) + text_of(b)});
  });
  return out;
}

void push(ReplayWindow& w, uint64_t seq, std::string_view payload, TimePoint at = t0,
          MessageType type = MessageType::text) {
  w.push(seq, type, bytes_of(payload), at);
}

TEST(Window, KeepsMessagesInOrderUntilACumulativeAckReleasesThem) {
  ReplayWindow w(100, 1 << 20, 2min);
  push(w, 1, "a");
  push(w, 2, "bb", t0, MessageType::binary);
  push(w, 3, "ccc");
  EXPECT_EQ(w.size(), 3u);
  EXPECT_EQ(w.bytes(), 6u);
  EXPECT_EQ(contents(w), (std::vector<Stored>{{1, MessageType::text, "a"},
                                              {2, MessageType::binary, "bb"},
                                              {3, MessageType::text, "ccc"}}));
  EXPECT_EQ(contents(w, 2), (std::vector<Stored>{{3, MessageType::text, "ccc"}}));
  w.release_through(2);
  EXPECT_EQ(w.first_seq(), 3u);
  EXPECT_EQ(w.bytes(), 3u);
  w.release_through(1);  // older ack: nothing more to do
  EXPECT_EQ(w.size(), 1u);
  w.release_through(3);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.lost_through(), 0u);  // released by acks, not lost
}

TEST(Window, CountBoundForcesOutTheOldestAndRecordsTheLoss) {
  ReplayWindow w(3, 1 << 20, 2min);
  for (uint64_t s = 1; s <= 5; ++s) push(w, s, "x");
  EXPECT_EQ(w.size(), 3u);
  EXPECT_EQ(w.first_seq(), 3u);
  EXPECT_EQ(w.lost_through(), 2u);
  EXPECT_EQ(w.forced_out(), 2u);
}

TEST(Window, ByteBoundForcesOutTheOldestToMakeRoom) {
  ReplayWindow w(100, 10, 2min);
  push(w, 1, "aaaa");
  push(w, 2, "bbbb");
  push(w, 3, "cc");  // exactly 10
  EXPECT_EQ(w.lost_through(), 0u);
  push(w, 4, "d");  // 11: the oldest must go
  EXPECT_EQ(w.first_seq(), 2u);
  EXPECT_EQ(w.bytes(), 7u);
  EXPECT_EQ(w.lost_through(), 1u);
}

TEST(Window, MessageLargerThanTheByteBoundIsNotStoredAndCountsAsLost) {
  ReplayWindow w(100, 10, 2min);
  push(w, 1, "aaaa");
  push(w, 2, std::string(11, 'z'));
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.lost_through(), 2u);
  push(w, 3, "ok");
  EXPECT_EQ(contents(w), (std::vector<Stored>{{3, MessageType::text, "ok"}}));
}

TEST(Window, AgeBoundForcesOutAtExactlyTheWindowAge) {
  ReplayWindow w(100, 1 << 20, 2min);
  push(w, 1, "a", t0);
  push(w, 2, "b", t0 + 10s);
  EXPECT_EQ(w.next_expiry(), t0 + 2min);
  w.expire(t0 + 2min - 1ns);
  EXPECT_EQ(w.size(), 2u);
  w.expire(t0 + 2min);
  EXPECT_EQ(w.first_seq(), 2u);
  EXPECT_EQ(w.lost_through(), 1u);
  EXPECT_EQ(w.next_expiry(), t0 + 2min + 10s);
  w.expire(t0 + 1h);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.next_expiry(), TimePoint::max());
  EXPECT_EQ(w.lost_through(), 2u);
}

TEST(Window, HoldSuspendsEveryBoundUntilReleased) {
  ReplayWindow w(2, 1 << 20, 2min);
  push(w, 1, "a", t0);
  w.hold(true);
  push(w, 2, "b", t0);
  push(w, 3, "c", t0);
  w.expire(t0 + 1h);
  EXPECT_EQ(w.size(), 3u);
  EXPECT_EQ(w.next_expiry(), TimePoint::max());  // no timer storm while held
  EXPECT_EQ(w.lost_through(), 0u);
  w.release_through(1);  // acks still release
  w.hold(false);         // count bound applies at once, age bound at the next expire
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.lost_through(), 0u);
  push(w, 4, "d", t0);
  EXPECT_EQ(w.lost_through(), 2u);
  w.expire(t0 + 2min);
  EXPECT_TRUE(w.empty());
}

TEST(Window, RenumberKeepsPayloadsAndForgetsLosses) {
  ReplayWindow w(2, 1 << 20, 2min);
  for (uint64_t s = 1; s <= 4; ++s) push(w, s, std::to_string(s));
  ASSERT_EQ(w.lost_through(), 2u);
  w.renumber(1);
  EXPECT_EQ(w.lost_through(), 0u);
  EXPECT_EQ(contents(w),
            (std::vector<Stored>{{1, MessageType::text, "3"}, {2, MessageType::text, "4"}}));
  push(w, 3, "5");
  EXPECT_EQ(w.first_seq(), 2u);
}

TEST(Window, RingsWrapAndGrowWithoutCorruptingPayloads) {
  // Random sizes and acks against a plain deque: every wrap and growth path of both rings.
  SeededRandom rng(7);
  ReplayWindow w(1'000'000, 1 << 30, 2min);
  std::deque<Stored> model;
  uint64_t next = 1;
  for (int step = 0; step < 20000; ++step) {
    if (rng.below(3) != 0) {
      std::string p(rng.below(rng.below(10) == 0 ? 9000 : 300), '\0');
      for (auto& c : p) c = static_cast<char>('a' + rng.below(26));
      MessageType type = rng.below(2) ? MessageType::text : MessageType::binary;
      w.push(next, type, bytes_of(p), t0);
      model.push_back({next, type, p});
      ++next;
    } else if (!model.empty()) {
      uint64_t ack = model.front().seq + rng.below(model.size());
      w.release_through(ack);
      while (!model.empty() && model.front().seq <= ack) model.pop_front();
    }
    if (step % 97 == 0) {
      ASSERT_EQ(contents(w), std::vector<Stored>(model.begin(), model.end())) << step;
    }
  }
  EXPECT_EQ(w.lost_through(), 0u);
}

}  // namespace
