// The replay window (docs/resume.md §4): messages sent but not yet acknowledged, in seq order,
// so they can be sent again after a reconnect. Bounded by count, bytes and age; a bound that
// forces out an unacknowledged message makes every resume from before it impossible, which
// lost_through() records.
//
// Storage is two rings (slots, payload bytes) that grow by doubling and are released when the
// window empties past a small size, so steady traffic copies each payload once and allocates
// nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "loop/clock.hpp"
#include "tether/message.hpp"

namespace tether::resume {

using loop::Duration;
using loop::TimePoint;

class ReplayWindow {
 public:
  ReplayWindow(std::size_t max_messages, std::size_t max_bytes, Duration max_age);

  // Stores message `seq`, which must follow the newest stored one (or anything when empty).
  // Forces out the oldest messages as needed to respect the count and byte bounds; a payload
  // larger than max_bytes is not stored at all (it counts as forced out).
  void push(uint64_t seq, MessageType type, std::span<const uint8_t> payload, TimePoint sent);
  // The peer acknowledged everything up to `ack`.
  void release_through(uint64_t ack);
  // Forces out messages sent at or before now - max_age.
  void expire(TimePoint now);
  // When expire() next has something to do; TimePoint::max() when empty or held.
  TimePoint next_expiry() const;

  // While held, nothing is forced out (push may exceed the bounds, expire() does nothing):
  // a client between its hello and the welcome must still hold every message after what the
  // server has acknowledged, or the resume it asked for could not be honoured. Releasing the
  // hold applies the count and byte bounds at once, the age bound at the next expire().
  void hold(bool on);
  bool held() const { return held_; }

  // Gives the stored messages new numbers first, first+1, ... (fresh session, at-least-once).
  void renumber(uint64_t first);
  // Drops everything and forgets losses.
  void clear();

  std::size_t size() const { return count_; }
  std::size_t bytes() const { return static_cast<std::size_t>(byte_tail_ - byte_head_); }
  bool empty() const { return count_ == 0; }
  uint64_t first_seq() const { return count_ ? first_seq_ : 0; }  // 0 when empty
  // Highest seq forced out before it was acknowledged (0: none). Resuming from a peer `last`
  // below this is impossible.
  uint64_t lost_through() const { return lost_through_; }
  uint64_t forced_out() const { return forced_out_; }  // how many messages were forced out

  // Calls f(seq, type, first_part, second_part) for each stored message with seq > after, in
  // order. The payload is first_part followed by second_part (the ring may wrap).
  template <class F>
  void for_each_after(uint64_t after, F&& f) const {
    std::size_t start = after >= first_seq_ ? static_cast<std::size_t>(after - first_seq_ + 1) : 0;
    for (std::size_t i = start; i < count_; ++i) {
      const Slot& s = slot(i);
      auto [a, b] = payload(s);
      f(first_seq_ + i, s.type, a, b);
    }
  }

 private:
  struct Slot {
    TimePoint sent;
    uint64_t pos;  // logical offset of the payload in the byte ring
    std::size_t size;
    MessageType type;
  };
  using Parts = std::pair<std::span<const uint8_t>, std::span<const uint8_t>>;

  const Slot& slot(std::size_t i) const { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  Parts payload(const Slot& s) const;
  void pop_front();
  void force_out_front();
  void enforce_bounds(std::size_t extra_count, std::size_t extra_bytes);
  void reserve_slot();
  void reserve_bytes(std::size_t extra);
  void trim_if_empty();

  std::size_t max_messages_;
  std::size_t max_bytes_;
  Duration max_age_;

  std::vector<Slot> slots_;  // ring, size a power of two (or 0)
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  uint64_t first_seq_ = 0;

  std::vector<uint8_t> bytes_;  // ring, size a power of two (or 0)
  uint64_t byte_head_ = 0;      // logical offsets; physical = offset & (size - 1)
  uint64_t byte_tail_ = 0;

  uint64_t lost_through_ = 0;
  uint64_t forced_out_ = 0;
  bool held_ = false;
};

}  // namespace tether::resume
