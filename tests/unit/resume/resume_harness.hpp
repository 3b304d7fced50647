// Shared helpers for the resume tests: a sink that records frames, literal times, a seeded RNG.
#pragma once
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loop/clock.hpp"
#include "protocol/random.hpp"
#include "resume/frame.hpp"

namespace resume_test {

using namespace std::chrono_literals;
using tether::MessageType;
using tether::loop::TimePoint;

inline const TimePoint t0 = TimePoint{} + std::chrono::hours(100);

struct Sent {
  MessageType type;
  std::string bytes;
  bool operator==(const Sent&) const = default;
};

// Records every frame handed to it.
struct Recorder {
  std::vector<Sent> frames;
  void operator()(MessageType type, std::span<const uint8_t> bytes) {
    frames.push_back(
        {type, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())});
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& f : frames) out.push_back(f.bytes);
    return out;
  }
  void clear() { frames.clear(); }
};

// prefix + decimal n (not `"M" + std::to_string(n)`, which trips GCC 12's -Wrestrict false
// positive at -O2).
inline std::string numbered(std::string_view prefix, uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string text_of(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// splitmix64: a fixed, portable sequence for a seed (no std distributions, whose output
// differs between standard libraries).
class SeededRandom final : public tether::protocol::Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
  void fill(std::span<uint8_t> out) override {
    for (auto& b : out) b = static_cast<uint8_t>(next());
  }

 private:
  uint64_t state_;
};

}  // namespace resume_test
