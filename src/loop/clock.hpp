// Time as a parameter (nghttp2 style): the loop reads a ClockSource once per iteration
// (libuv style) and everything above compares against that cached value.
#pragma once
#include <chrono>

namespace tether::loop {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

class ClockSource {
 public:
  virtual ~ClockSource() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public ClockSource {
 public:
  TimePoint now() const override { return Clock::now(); }
};

// For tests: time moves only when told to.
class VirtualClock final : public ClockSource {
 public:
  explicit VirtualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }
  void set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

}  // namespace tether::loop
