// Injected randomness (mask keys §5.3, handshake keys §4.1), so frames are exact in tests.
#pragma once
#include <cstdint>
#include <span>

namespace tether::protocol {

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<uint8_t> out) = 0;
  uint32_t next_u32() {
    uint32_t v;
    fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v));
    return v;
  }
};

// §10.3: mask keys must not be predictable by the application, so a CSPRNG-seeded
// generator: ChaCha-free xoshiro256** reseeded from getrandom() every 2^20 outputs.
class SystemRandom final : public Random {
 public:
  SystemRandom();
  void fill(std::span<uint8_t> out) override;

 private:
  void reseed();
  uint64_t next();
  uint64_t s_[4];
  uint32_t until_reseed_ = 0;
};

// The calling thread's SystemRandom (made on first use).
Random& thread_random();

// Deterministic sequence for tests: bytes seed, seed+1, ...
class CountingRandom final : public Random {
 public:
  explicit CountingRandom(uint8_t seed = 0) : next_(seed) {}
  void fill(std::span<uint8_t> out) override {
    for (auto& b : out) b = next_++;
  }

 private:
  uint8_t next_;
};

}  // namespace tether::protocol
