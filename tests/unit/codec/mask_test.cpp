// RFC 6455 §5.3 client-to-server masking.
#include "codec/mask.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace tether::codec {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t key_from_wire(const uint8_t (&raw)[4]) {
  uint32_t k;
  std::memcpy(&k, raw, 4);
  return k;
}

// The §5.3 definition, literally: j = i MOD 4; transformed[i] = original[i] XOR key[j].
void naive_mask(uint8_t* data, std::size_t n, const uint8_t (&key)[4], std::size_t offset) {
  for (std::size_t i = 0; i < n; ++i) data[i] ^= key[(offset + i) % 4];
}

Bytes pattern(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

constexpr uint8_t key_bytes[4] = {0x37, 0xfa, 0x21, 0x3d};

TEST(Rfc6455_5_3, OctetIXoredWithKeyOctetIMod4) {
  uint8_t data[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};  // §5.7 masked "Hello"
  EXPECT_EQ(apply_mask(data, 5, key_from_wire(key_bytes)), 1u);
  EXPECT_EQ(std::memcmp(data, "Hello", 5), 0);
}

TEST(Rfc6455_5_3, MaskingIsItsOwnInverse) {
  const Bytes original = pattern(1000, 1);
  Bytes data = original;
  const uint32_t key = key_from_wire(key_bytes);
  apply_mask(data.data(), data.size(), key, 3);
  EXPECT_NE(data, original);
  apply_mask(data.data(), data.size(), key, 3);
  EXPECT_EQ(data, original);
}

TEST(Mask, MatchesNaiveForEveryLengthOffsetAndAlignment) {
  const uint8_t keys[][4] = {
      {0x37, 0xfa, 0x21, 0x3d}, {0x01, 0x02, 0x04, 0x08}, {0xff, 0x00, 0xff, 0x00}, {0, 0, 0, 0}};
  constexpr std::size_t guard = 16;
  for (const auto& key : keys) {
    const uint32_t k = key_from_wire(key);
    for (std::size_t len = 0; len <= 100; ++len) {
      for (std::size_t offset = 0; offset < 4; ++offset) {
        for (std::size_t start = 0; start < 8; ++start) {
          // One allocation with guard bytes on both sides; `start` moves the pointer off
          // 8-byte alignment so head/word/tail splits are all exercised.
          alignas(8) uint8_t buf[guard + 8 + 100 + guard];
          const Bytes fill = pattern(sizeof buf, static_cast<uint32_t>(len * 31 + start));
          std::memcpy(buf, fill.data(), sizeof buf);
          uint8_t want[sizeof buf];
          std::memcpy(want, buf, sizeof buf);

          uint8_t* p = buf + guard + start;
          naive_mask(want + guard + start, len, key, offset);
          const std::size_t next = apply_mask(p, len, k, offset);
          ASSERT_EQ(next, (offset + len) % 4);
          ASSERT_EQ(std::memcmp(buf, want, sizeof buf), 0)
              << "len " << len << " offset " << offset << " start " << start;
        }
      }
    }
  }
}

TEST(Mask, OffsetIsTakenModuloFour) {
  const uint32_t k = key_from_wire(key_bytes);
  for (std::size_t offset = 0; offset < 16; ++offset) {
    Bytes a = pattern(37, 7);
    Bytes b = a;
    EXPECT_EQ(apply_mask(a.data(), a.size(), k, offset), (offset + 37) % 4);
    apply_mask(b.data(), b.size(), k, offset % 4);
    EXPECT_EQ(a, b) << offset;
  }
}

TEST(Mask, ZeroLengthTouchesNothing) {
  EXPECT_EQ(apply_mask(nullptr, 0, 0x12345678, 0), 0u);
  EXPECT_EQ(apply_mask(nullptr, 0, 0x12345678, 3), 3u);
}

TEST(Mask, ChainedCallsEqualOneCallAtEverySplitPoint) {
  const uint32_t k = key_from_wire(key_bytes);
  for (const std::size_t len : {0u, 1u, 7u, 8u, 9u, 31u, 64u, 100u}) {
    const Bytes original = pattern(len, static_cast<uint32_t>(len));
    Bytes want = original;
    apply_mask(want.data(), want.size(), k);
    for (std::size_t split = 0; split <= len; ++split) {
      Bytes got = original;
      const std::size_t mid = apply_mask(got.data(), split, k, 0);
      EXPECT_EQ(apply_mask(got.data() + split, len - split, k, mid), len % 4);
      ASSERT_EQ(got, want) << "len " << len << " split " << split;
    }
  }
}

TEST(Mask, ChainedCallsAcrossRandomSplits) {
  // Like unmasking a large payload that arrives in arbitrary read sizes.
  std::mt19937 rng(42);
  const uint32_t k = key_from_wire(key_bytes);
  for (int round = 0; round < 200; ++round) {
    const std::size_t len = rng() % 5000;
    const Bytes original = pattern(len, static_cast<uint32_t>(round));
    Bytes want = original;
    naive_mask(want.data(), want.size(), key_bytes, 0);
    Bytes got = original;
    std::size_t pos = 0, offset = 0;
    while (pos < len) {
      const std::size_t take = std::min<std::size_t>(len - pos, rng() % 70);
      offset = apply_mask(got.data() + pos, take, k, offset);
      pos += take;
    }
    ASSERT_EQ(got, want) << "round " << round;
  }
}

TEST(Mask, LargeBufferMatchesNaive) {
  const Bytes original = pattern(1 << 20, 99);
  Bytes want = original, got = original;
  naive_mask(want.data() + 3, want.size() - 3, key_bytes, 2);
  apply_mask(got.data() + 3, got.size() - 3, key_from_wire(key_bytes), 2);
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace tether::codec
