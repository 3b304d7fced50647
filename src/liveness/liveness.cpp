#include "liveness/liveness.hpp"

#include <algorithm>
#include <cstring>

namespace tether::liveness {

namespace {
constexpr TimePoint never = TimePoint::max();
bool on(Duration d) { return d > Duration::zero(); }
}  // namespace

void State::opened(TimePoint now) {
  phase_ = Phase::open;
  last_sent_ = last_received_ = last_message_ = ping_or_since_ = now;
}

void State::closing(TimePoint now) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::closing;
  ping_or_since_ = now;
}

TimePoint State::next_deadline(const Config& config) const {
  switch (phase_) {
    case Phase::handshake:
      return on(config.handshake_timeout) ? ping_or_since_ + config.handshake_timeout : never;
    case Phase::open: {
      TimePoint t = never;
      if (on(config.ping_interval)) {
        t = std::min(t, last_sent_ + config.ping_interval);
        t = std::min(t, std::max(last_received_, ping_or_since_) + config.ping_interval);
        t = std::min(t, last_received_ + config.ping_interval + config.ping_timeout);
      }
      if (on(config.idle_timeout)) t = std::min(t, last_message_ + config.idle_timeout);
      return t;
    }
    case Phase::closing: {
      TimePoint t = on(config.close_timeout) ? ping_or_since_ + config.close_timeout : never;
      // A peer that vanishes mid-close is still detected by the heartbeat bound.
      if (on(config.ping_interval))
        t = std::min(t, last_received_ + config.ping_interval + config.ping_timeout);
      return t;
    }
    case Phase::done:
      return never;
  }
  return never;
}

Action State::check(const Config& config, TimePoint now) const {
  switch (phase_) {
    case Phase::handshake:
      if (on(config.handshake_timeout) && now >= ping_or_since_ + config.handshake_timeout)
        return Action::handshake_timeout;
      return Action::none;
    case Phase::open:
      // Death first: a dead peer needs no ping.
      if (on(config.ping_interval)) {
        if (now >= last_received_ + config.ping_interval + config.ping_timeout)
          return Action::heartbeat_timeout;
      }
      if (on(config.idle_timeout) && now >= last_message_ + config.idle_timeout)
        return Action::idle_timeout;
      if (on(config.ping_interval)) {
        if (now >= last_sent_ + config.ping_interval) return Action::send_ping;
        // A silent peer gets one ping per interval to answer (it may only be listening).
        if (now >= std::max(last_received_, ping_or_since_) + config.ping_interval)
          return Action::send_ping;
      }
      return Action::none;
    case Phase::closing:
      if (on(config.ping_interval) &&
          now >= last_received_ + config.ping_interval + config.ping_timeout)
        return Action::heartbeat_timeout;
      if (on(config.close_timeout) && now >= ping_or_since_ + config.close_timeout)
        return Action::close_timeout;
      return Action::none;
    case Phase::done:
      return Action::none;
  }
  return Action::none;
}

void encode_ping(uint32_t seq, TimePoint sent, uint8_t (&out)[ping_payload_size]) {
  out[0] = 't';
  out[1] = 'q';
  for (int i = 0; i < 4; ++i) out[2 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  const auto ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch()).count());
  for (int i = 0; i < 8; ++i) out[6 + i] = static_cast<uint8_t>(ns >> (56 - 8 * i));
}

std::optional<Duration> rtt_from_pong(std::span<const uint8_t> p, TimePoint now) {
  if (p.size() != ping_payload_size || p[0] != 't' || p[1] != 'q') return std::nullopt;
  uint64_t ns = 0;
  for (int i = 0; i < 8; ++i) ns = (ns << 8) | p[6 + i];
  const TimePoint sent{
      std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(static_cast<int64_t>(ns)))};
  if (sent > now) return std::nullopt;
  return now - sent;
}

}  // namespace tether::liveness
