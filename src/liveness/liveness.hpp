// Per-connection deadlines as pure functions of time (nghttp2's injected time): heartbeat,
// handshake, idle and close-handshake timeouts. No clock, socket or timer in here: the I/O layer
// reports activity with timestamps, asks check(now) when the deadline it was given comes, and
// re-arms one timer for next_deadline(). Steady traffic only updates timestamps.
//
// Heartbeat (both roles):
//   - a ping goes out when nothing has been *sent* for ping_interval, so every hop's
//     per-direction idle timer is fed even when only the other side talks;
//   - a ping also goes out when nothing has been *received* for ping_interval (at most one per
//     interval), so a peer that only listens is asked for a pong before it is judged: we may be
//     sending all the time while it has nothing to say;
//   - the peer is dead when nothing at all has been *received* for ping_interval + ping_timeout.
// The detection bound is therefore interval + timeout after the last received byte, plus the
// event loop's timer tick (10 ms, see loop/event_loop.hpp) and scheduling latency.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

#include "loop/clock.hpp"

namespace tether::liveness {

using loop::Duration;
using loop::TimePoint;

struct Config {
  Duration ping_interval{};      // 0: no heartbeat pings, no heartbeat timeout
  Duration ping_timeout{};       // added to ping_interval for the death bound
  Duration handshake_timeout{};  // 0: none
  Duration idle_timeout{};       // no application message in either direction; 0: none
  Duration close_timeout{};      // our close sent, no close back; 0: none
};

enum class Phase : uint8_t { handshake, open, closing, done };

enum class Action : uint8_t {
  none,
  send_ping,          // write a ping now (then call sent())
  heartbeat_timeout,  // peer silent past interval + timeout: drop the connection (1006)
  handshake_timeout,  // opening handshake not complete in time: drop it
  idle_timeout,       // no application message for idle_timeout: close it (1001)
  close_timeout,      // closing handshake not answered: drop TCP
};

// The per-connection part: timestamps and phase, 40 bytes. The Config is passed to the two
// questions instead of being kept, since every connection of a loop shares one.
class State {
 public:
  explicit State(TimePoint now)
      : last_sent_(now), last_received_(now), last_message_(now), ping_or_since_(now) {}

  void opened(TimePoint now);
  void closing(TimePoint now);  // we sent a close frame
  void done() { phase_ = Phase::done; }
  void sent(TimePoint now) { last_sent_ = now; }
  void pinged(TimePoint now) {
    last_sent_ = now;
    if (phase_ == Phase::open) ping_or_since_ = now;
  }
  void received(TimePoint now) { last_received_ = now; }
  void message(TimePoint now) { last_message_ = now; }

  // The most urgent action due at `now` (at most one per call; call again after acting).
  Action check(const Config& config, TimePoint now) const;
  // When check() next has something to say; TimePoint::max() when nothing is pending.
  TimePoint next_deadline(const Config& config) const;

  Phase phase() const { return phase_; }
  TimePoint last_received() const { return last_received_; }

 private:
  TimePoint last_sent_;
  TimePoint last_received_;
  TimePoint last_message_;
  // Open: when our last heartbeat ping went out. Handshake: when it started; closing: when our
  // close went out. One field, since each phase needs only its own.
  TimePoint ping_or_since_;
  Phase phase_ = Phase::handshake;
};

// A State with its Config: the same questions without passing the config each time.
class Liveness {
 public:
  // `config` is not copied: it must outlive this.
  Liveness(const Config& config, TimePoint now) : config_(&config), state_(now) {}
  Liveness(Config&&, TimePoint) = delete;

  void opened(TimePoint now) { state_.opened(now); }
  void closing(TimePoint now) { state_.closing(now); }
  void done() { state_.done(); }
  void sent(TimePoint now) { state_.sent(now); }
  void pinged(TimePoint now) { state_.pinged(now); }
  void received(TimePoint now) { state_.received(now); }
  void message(TimePoint now) { state_.message(now); }
  Action check(TimePoint now) const { return state_.check(*config_, now); }
  TimePoint next_deadline() const { return state_.next_deadline(*config_); }
  Phase phase() const { return state_.phase(); }
  TimePoint last_received() const { return state_.last_received(); }
  const Config& config() const { return *config_; }

 private:
  const Config* config_;
  State state_;
};

// Ping payloads carry a sequence number and the send time, so the pong that echoes one gives an
// RTT sample without any per-ping state. 14 bytes: "tq", u32 sequence, i64 send time (ns).
inline constexpr std::size_t ping_payload_size = 14;
void encode_ping(uint32_t seq, TimePoint sent, uint8_t (&out)[ping_payload_size]);
// The RTT for a pong carrying one of our pings, or nullopt for anything else (unsolicited
// pongs, other implementations' payloads, a send time in the future).
std::optional<Duration> rtt_from_pong(std::span<const uint8_t> payload, TimePoint now);

}  // namespace tether::liveness
