#include "resume/session_id.hpp"

namespace tether::resume {

SessionId SessionId::generate(protocol::Random& rng) {
  static constexpr char digits[] = "0123456789abcdef";
  std::array<uint8_t, hex_size / 2> bits;
  rng.fill(bits);
  SessionId id;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    id.hex_[2 * i] = digits[bits[i] >> 4];
    id.hex_[2 * i + 1] = digits[bits[i] & 0xF];
  }
  id.set_ = true;
  return id;
}

std::optional<SessionId> SessionId::parse(std::string_view hex) {
  if (hex.size() != hex_size) return std::nullopt;
  SessionId id;
  for (std::size_t i = 0; i < hex_size; ++i) {
    char c = hex[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    id.hex_[i] = c;
  }
  id.set_ = true;
  return id;
}

}  // namespace tether::resume
