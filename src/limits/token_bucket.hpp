// A token bucket as a pure function of time (nghttp2's rate limiter shape): `rate` tokens per
// second, at most `burst` saved up. No clock in here: callers pass `now` (the loop's cached time,
// or a virtual clock in tests). Used for the control-frame limit per connection and the accept
// rate per loop (docs/security.md).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "loop/clock.hpp"

namespace tether::limits {

class TokenBucket {
 public:
  TokenBucket() = default;  // unlimited
  TokenBucket(unsigned rate_per_second, unsigned burst, loop::TimePoint now)
      : rate_(rate_per_second), burst_(std::max(burst, 1u)), tokens_(burst_), last_(now) {}

  bool unlimited() const { return rate_ == 0; }

  // Takes one token if there is one at `now`.
  bool take(loop::TimePoint now) {
    if (rate_ == 0) return true;
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // When the next token will be there (now when one is).
  loop::TimePoint next_token(loop::TimePoint now) {
    if (rate_ == 0) return now;
    refill(now);
    if (tokens_ >= 1.0) return now;
    const double wait_s = (1.0 - tokens_) / rate_;
    return now + std::chrono::duration_cast<loop::Duration>(std::chrono::duration<double>(wait_s));
  }

 private:
  void refill(loop::TimePoint now) {
    if (now <= last_) return;
    const double dt = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min<double>(burst_, tokens_ + dt * rate_);
    last_ = now;
  }

  unsigned rate_ = 0;
  unsigned burst_ = 1;
  double tokens_ = 0;
  loop::TimePoint last_{};
};

}  // namespace tether::limits
