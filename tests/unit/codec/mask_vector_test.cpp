// apply_mask's vector paths (16 bytes at a time, 64 per iteration; 32 and 128 where the CPU has
// AVX2; alignment head from 4 KiB) against the §5.3 definition at every length, key offset
// and start alignment (mod 32) that reaches them.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "codec/mask.hpp"

namespace tether::codec {
namespace {

void reference_mask(uint8_t* data, std::size_t n, const uint8_t (&key)[4], std::size_t offset) {
  for (std::size_t i = 0; i < n; ++i) data[i] ^= key[(offset + i) % 4];
}

TEST(MaskVector, MatchesReferenceForEveryLength0To300EveryOffsetAndEveryAlignment) {
  constexpr uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint32_t k;
  std::memcpy(&k, key, 4);
  constexpr std::size_t guard = 32, max_len = 300;
  std::mt19937 rng(7);
  alignas(64) uint8_t buf[guard + 32 + max_len + guard];
  alignas(64) uint8_t want[sizeof buf];
  for (std::size_t len = 0; len <= max_len; ++len) {
    for (std::size_t offset = 0; offset < 8; ++offset) {  // 4..7: taken modulo 4
      for (std::size_t start = 0; start < 32; ++start) {
        for (auto& b : buf) b = static_cast<uint8_t>(rng());
        std::memcpy(want, buf, sizeof buf);
        reference_mask(want + guard + start, len, key, offset);
        ASSERT_EQ(apply_mask(buf + guard + start, len, k, offset), (offset + len) % 4);
        // Guard bytes on both sides: nothing outside [start, start + len) is touched.
        ASSERT_EQ(std::memcmp(buf, want, sizeof buf), 0)
            << "len " << len << " offset " << offset << " start " << start;
      }
    }
  }
}

TEST(MaskVector, LargeBuffersAtEveryAlignmentAndOffset) {
  constexpr uint8_t key[4] = {0x01, 0x80, 0xfe, 0x55};
  uint32_t k;
  std::memcpy(&k, key, 4);
  std::mt19937 rng(11);
  std::vector<uint8_t> original((64 << 10) + 64);
  for (auto& b : original) b = static_cast<uint8_t>(rng());
  for (const std::size_t len : {std::size_t{65536}, std::size_t{65536 - 1}, std::size_t{4097}}) {
    for (std::size_t start = 0; start < 32; ++start) {
      for (std::size_t offset = 0; offset < 4; ++offset) {
        auto got = original, want = original;
        reference_mask(want.data() + start, len, key, offset);
        apply_mask(got.data() + start, len, k, offset);
        ASSERT_EQ(got, want) << "len " << len << " start " << start << " offset " << offset;
      }
    }
  }
}

}  // namespace
}  // namespace tether::codec
