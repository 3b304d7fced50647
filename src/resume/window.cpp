#include "resume/window.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace tether::resume {

namespace {
// Rings above these sizes are released when the window empties: an idle session holds little,
// a live one that acks promptly keeps its (small) rings and allocates nothing.
constexpr std::size_t keep_bytes = 64 * 1024;
constexpr std::size_t keep_slots = 1024;
constexpr std::size_t min_bytes = 4096;
constexpr std::size_t min_slots = 16;
}  // namespace

ReplayWindow::ReplayWindow(std::size_t max_messages, std::size_t max_bytes, Duration max_age)
    : max_messages_(std::max<std::size_t>(max_messages, 1)),
      max_bytes_(max_bytes),
      max_age_(max_age) {}

void ReplayWindow::push(uint64_t seq, MessageType type, std::span<const uint8_t> payload,
                        TimePoint sent) {
  if (!held_) {
    if (payload.size() > max_bytes_) {
      while (count_) force_out_front();
      lost_through_ = seq;
      ++forced_out_;
      trim_if_empty();
      return;
    }
    enforce_bounds(1, payload.size());
  }
  reserve_slot();
  reserve_bytes(payload.size());
  if (!payload.empty()) {
    const std::size_t at = static_cast<std::size_t>(byte_tail_) & (bytes_.size() - 1);
    const std::size_t first = std::min(payload.size(), bytes_.size() - at);
    std::memcpy(bytes_.data() + at, payload.data(), first);
    if (payload.size() > first)
      std::memcpy(bytes_.data(), payload.data() + first, payload.size() - first);
  }
  if (count_ == 0) first_seq_ = seq;
  slots_[(head_ + count_) & (slots_.size() - 1)] = Slot{sent, byte_tail_, payload.size(), type};
  byte_tail_ += payload.size();
  ++count_;
}

void ReplayWindow::release_through(uint64_t ack) {
  while (count_ && first_seq_ <= ack) pop_front();
  trim_if_empty();
}

void ReplayWindow::hold(bool on) {
  held_ = on;
  if (on) return;
  enforce_bounds(0, 0);
  trim_if_empty();
}

void ReplayWindow::enforce_bounds(std::size_t extra_count, std::size_t extra_bytes) {
  // Room must remain for what is about to be added.
  while (count_ && (count_ + extra_count > max_messages_ || bytes() + extra_bytes > max_bytes_))
    force_out_front();
}

void ReplayWindow::expire(TimePoint now) {
  if (held_) return;
  while (count_ && slot(0).sent + max_age_ <= now) force_out_front();
  trim_if_empty();
}

TimePoint ReplayWindow::next_expiry() const {
  return count_ && !held_ ? slot(0).sent + max_age_ : TimePoint::max();
}

void ReplayWindow::renumber(uint64_t first) {
  first_seq_ = first;
  lost_through_ = 0;
}

void ReplayWindow::clear() {
  count_ = head_ = 0;
  byte_head_ = byte_tail_ = 0;
  lost_through_ = 0;
  trim_if_empty();
}

ReplayWindow::Parts ReplayWindow::payload(const Slot& s) const {
  if (s.size == 0) return {};
  const std::size_t at = static_cast<std::size_t>(s.pos) & (bytes_.size() - 1);
  const std::size_t first = std::min(s.size, bytes_.size() - at);
  return {std::span<const uint8_t>(bytes_.data() + at, first),
          std::span<const uint8_t>(bytes_.data(), s.size - first)};
}

void ReplayWindow::pop_front() {
  byte_head_ += slot(0).size;
  head_ = (head_ + 1) & (slots_.size() - 1);
  --count_;
  ++first_seq_;
}

void ReplayWindow::force_out_front() {
  lost_through_ = std::max(lost_through_, first_seq_);
  ++forced_out_;
  pop_front();
}

void ReplayWindow::reserve_slot() {
  if (count_ < slots_.size()) return;
  std::vector<Slot> grown(std::max(min_slots, slots_.size() * 2));
  for (std::size_t i = 0; i < count_; ++i) grown[i] = slot(i);
  slots_ = std::move(grown);
  head_ = 0;
}

void ReplayWindow::reserve_bytes(std::size_t extra) {
  const std::size_t used = bytes();
  if (used + extra <= bytes_.size()) return;
  std::vector<uint8_t> grown(std::bit_ceil(std::max(min_bytes, used + extra)));
  // Re-base logical offsets at 0 so the live bytes sit linearly at the start of the new ring.
  if (used) {
    const std::size_t mask = bytes_.size() - 1;
    const std::size_t at = static_cast<std::size_t>(byte_head_) & mask;
    const std::size_t first = std::min(used, bytes_.size() - at);
    std::memcpy(grown.data(), bytes_.data() + at, first);
    std::memcpy(grown.data() + first, bytes_.data(), used - first);
  }
  for (std::size_t i = 0; i < count_; ++i)
    slots_[(head_ + i) & (slots_.size() - 1)].pos -= byte_head_;
  byte_tail_ -= byte_head_;
  byte_head_ = 0;
  bytes_ = std::move(grown);
}

void ReplayWindow::trim_if_empty() {
  if (count_) return;
  byte_head_ = byte_tail_ = 0;
  head_ = 0;
  if (bytes_.size() > keep_bytes) bytes_ = {};
  if (slots_.size() > keep_slots) slots_ = {};
}

}  // namespace tether::resume
