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

// The same limit with the parameters kept apart from the state, for one per connection: the
// state is a single time (GCRA, the generic cell rate algorithm: the "theoretical arrival time"
// of the next event), 8 bytes where a TokenBucket takes 24, and the parameters are shared.
// Allows `burst` events at once, then `rate_per_second` per second: the same decisions as a
// TokenBucket with those parameters.
struct RateLimit {
  RateLimit() = default;  // unlimited
  RateLimit(unsigned rate_per_second, unsigned burst) {
    if (rate_per_second == 0) return;
    interval = std::chrono::duration_cast<loop::Duration>(
        std::chrono::duration<double>(1.0 / rate_per_second));
    tolerance = interval * (std::max(burst, 1u) - 1);
  }
  bool unlimited() const { return interval == loop::Duration::zero(); }
  loop::Duration interval{};   // between events at the sustained rate
  loop::Duration tolerance{};  // how far ahead of the rate a burst may run
};

class RateState {
 public:
  // One event at `now`: true if `limit` allows it (and counts it).
  bool take(const RateLimit& limit, loop::TimePoint now) {
    if (limit.unlimited()) return true;
    const loop::TimePoint tat = std::max(tat_, now);
    if (tat - now > limit.tolerance) return false;
    tat_ = tat + limit.interval;
    return true;
  }

 private:
  loop::TimePoint tat_{};  // the epoch: long past, so a fresh state has its whole burst
};

}  // namespace tether::limits
