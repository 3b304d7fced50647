// Reconnect pacing as a pure function of attempt numbers, times and random bits (injected), so
// delays are exact in tests.
//
// Delay for attempt n (1-based): min + uniform[0, ceiling_n - min], ceiling_n = min(max, min*2^n).
// That is full jitter above the floor: even at the cap the delay stays spread over [min, max],
// so clients that lost the same server never come back in lockstep.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "loop/clock.hpp"
#include "tether/close_info.hpp"

namespace tether::liveness {

using loop::Duration;
using loop::TimePoint;

struct BackoffConfig {
  Duration min = std::chrono::milliseconds(500);
  Duration max = std::chrono::seconds(30);
  unsigned max_attempts = 0;  // 0: forever
  // A connection that stayed open this long resets the attempt counter.
  Duration reset_after = std::chrono::seconds(10);
};

class Backoff {
 public:
  explicit Backoff(const BackoffConfig& config) : config_(config) {}

  // The delay before the next attempt, or nullopt when max_attempts is used up.
  // `random_bits`: 64 uniformly random bits.
  std::optional<Duration> next_delay(uint64_t random_bits);
  // A server-suggested delay (1012/1013 with "reconnect in N ms"): honoured, plus up to `min`
  // of jitter so clients given the same figure still spread.
  std::optional<Duration> suggested_delay(Duration suggested, uint64_t random_bits);

  void opened(TimePoint now) { opened_at_ = now; }
  // The connection ended at `now`: reset the counter if it had been up long enough.
  void closed(TimePoint now);

  unsigned attempt() const { return attempt_; }  // attempts made since the last stable connection
  const BackoffConfig& config() const { return config_; }

 private:
  std::optional<Duration> consume_attempt();
  BackoffConfig config_;
  unsigned attempt_ = 0;
  std::optional<TimePoint> opened_at_;
};

// Default policy: reconnect after abnormal ends (1006: network error, heartbeat timeout, connect
// or handshake failure) and after 1001, 1011, 1012, 1013 from the server; not after a close the
// application asked for, nor 1000/1008 (or any other code) from the server.
bool default_should_reconnect(const CloseInfo& info);

// Parses "reconnect in <N>ms" out of a 1012/1013 close reason (docs/resume.md, server restarts).
std::optional<Duration> suggested_reconnect_delay(uint16_t code, std::string_view reason);

}  // namespace tether::liveness
