#include "protocol/random.hpp"

#include <sys/random.h>

#include <cstring>

namespace tether::protocol {

SystemRandom::SystemRandom() { reseed(); }

Random& thread_random() {
  thread_local SystemRandom rng;
  return rng;
}

void SystemRandom::reseed() {
  size_t got = 0;
  auto* p = reinterpret_cast<uint8_t*>(s_);
  while (got < sizeof s_) {
    ssize_t n = getrandom(p + got, sizeof s_ - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // xoshiro's one forbidden state
  until_reseed_ = 1u << 20;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t SystemRandom::next() {
  if (until_reseed_-- == 0) reseed();
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void SystemRandom::fill(std::span<uint8_t> out) {
  size_t i = 0;
  while (i < out.size()) {
    uint64_t v = next();
    size_t n = std::min(sizeof v, out.size() - i);
    std::memcpy(out.data() + i, &v, n);
    i += n;
  }
}

}  // namespace tether::protocol
