// What every fuzz target shares: FUZZ_CHECK (an invariant that must hold for any input: report
// it and trap, so libFuzzer keeps the input as a crash) and the xorshift16 step the targets'
// chunk splitters use to vary chunk sizes deterministically per input.
#pragma once
#include <cstdint>
#include <cstdio>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                                  \
    }                                                                                    \
  } while (0)

inline uint16_t xorshift16(uint16_t& state) {
  state ^= static_cast<uint16_t>(state << 7);
  state ^= static_cast<uint16_t>(state >> 9);
  state ^= static_cast<uint16_t>(state << 8);
  return state;
}
