#include "liveness/backoff.hpp"

#include <algorithm>
#include <charconv>

namespace tether::liveness {

namespace {
// Uniform in [0, span] from 64 random bits (the modulo bias is below 2^-40 for spans < 2^24 ns
// multiples; negligible for delays).
Duration uniform_upto(Duration span, uint64_t bits) {
  if (span <= Duration::zero()) return Duration::zero();
  const auto n = static_cast<uint64_t>(span.count());
  return Duration(static_cast<Duration::rep>(bits % (n + 1)));
}
}  // namespace

std::optional<Duration> Backoff::consume_attempt() {
  if (config_.max_attempts != 0 && attempt_ >= config_.max_attempts) return std::nullopt;
  ++attempt_;
  return Duration::zero();
}

std::optional<Duration> Backoff::next_delay(uint64_t random_bits) {
  if (!consume_attempt()) return std::nullopt;
  Duration ceiling = config_.max;
  // min * 2^attempt without overflow: stop doubling once past max.
  Duration c = config_.min;
  for (unsigned i = 0; i < attempt_ && c < config_.max; ++i) c *= 2;
  ceiling = std::min(c, config_.max);
  if (ceiling < config_.min) ceiling = config_.min;
  return config_.min + uniform_upto(ceiling - config_.min, random_bits);
}

std::optional<Duration> Backoff::suggested_delay(Duration suggested, uint64_t random_bits) {
  if (!consume_attempt()) return std::nullopt;
  return suggested + uniform_upto(config_.min, random_bits);
}

void Backoff::closed(TimePoint now) {
  if (opened_at_ && now - *opened_at_ >= config_.reset_after) attempt_ = 0;
  opened_at_.reset();
}

bool default_should_reconnect(const CloseInfo& info) {
  switch (info.cause) {
    case Cause::local_close:
      return false;  // the application asked for it
    case Cause::network_error:
    case Cause::heartbeat_timeout:
    case Cause::connect_failed:
    case Cause::handshake_timeout:
    case Cause::handshake_failed:
      return true;  // abnormal: the server may be back in a moment
    case Cause::remote_close:
    case Cause::idle_timeout:
    case Cause::protocol_error:
      break;
  }
  if (info.cause != Cause::remote_close) return false;
  switch (info.code) {
    case 1001:  // going away (server shutting down)
    case 1011:  // internal error
    case 1012:  // service restart
    case 1013:  // try again later
      return true;
    default:
      return false;  // 1000, 1008 and the rest: the server meant it
  }
}

std::optional<Duration> suggested_reconnect_delay(uint16_t code, std::string_view reason) {
  if (code != 1012 && code != 1013) return std::nullopt;
  constexpr std::string_view key = "reconnect in ";
  auto at = reason.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = reason.substr(at + key.size());
  uint64_t ms = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), ms);
  if (ec != std::errc() || ptr == rest.data()) return std::nullopt;
  std::string_view unit(ptr, static_cast<std::size_t>(rest.data() + rest.size() - ptr));
  if (!unit.starts_with("ms")) return std::nullopt;
  if (ms > 3'600'000) ms = 3'600'000;  // an hour at most, whatever the server says
  return std::chrono::milliseconds(ms);
}

}  // namespace tether::liveness
