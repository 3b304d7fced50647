// Session ids: 128 random bits written as 32 lowercase hex characters (docs/resume.md §2).
// The id is a bearer capability: whoever presents it in a hello takes the session over.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "protocol/random.hpp"

namespace tether::resume {

class SessionId {
 public:
  static constexpr std::size_t hex_size = 32;

  SessionId() = default;  // the empty id: "no session" in a hello

  // 16 bytes from `rng`, hex-encoded.
  static SessionId generate(protocol::Random& rng);
  // Exactly 32 characters [0-9a-f]; nullopt for anything else (the empty string included).
  static std::optional<SessionId> parse(std::string_view hex);

  bool empty() const { return !set_; }
  std::string_view view() const { return set_ ? std::string_view(hex_.data(), hex_size) : ""; }

  friend bool operator==(const SessionId& a, const SessionId& b) { return a.view() == b.view(); }

 private:
  std::array<char, hex_size> hex_{};
  bool set_ = false;
};

}  // namespace tether::resume

template <>
struct std::hash<tether::resume::SessionId> {
  std::size_t operator()(const tether::resume::SessionId& id) const noexcept {
    return std::hash<std::string_view>{}(id.view());
  }
};
