// Utf8Validator's block paths (ASCII skipped 64/16/8 bytes at a time, the DFA run over blocks of
// up to 32 bytes with one reject check per block) against a reference decoder, with the
// interesting byte at every position so it lands at every place in a block.
#include <gtest/gtest.h>

#include "utf8_reference.hpp"

#include <random>
#include <vector>

#include "codec/utf8.hpp"

namespace tether::codec {
namespace {

using Bytes = std::vector<uint8_t>;

bool reference_valid(const Bytes& s) { return tether_test::reference_valid_utf8(s); }

// Appends one random character of 1..4 bytes (ASCII-heavy when `ascii_bias`).
void push_char(Bytes& out, std::mt19937& rng, bool ascii_bias) {
  const unsigned pick = rng() % (ascii_bias ? 16 : 4);
  uint32_t cp;
  if (pick >= 3) {
    cp = rng() % 0x80;
  } else if (pick == 0) {
    cp = 0x80 + rng() % (0x800 - 0x80);
  } else if (pick == 1) {
    do cp = 0x800 + rng() % (0x10000 - 0x800);
    while (cp >= 0xD800 && cp <= 0xDFFF);
  } else {
    cp = 0x10000 + rng() % (0x110000 - 0x10000);
  }
  if (cp < 0x80) {
    out.push_back(static_cast<uint8_t>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<uint8_t>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<uint8_t>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<uint8_t>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  }
}

Bytes random_text(std::size_t min_len, std::mt19937& rng, bool ascii_bias) {
  Bytes b;
  while (b.size() < min_len) push_char(b, rng, ascii_bias);
  return b;
}

TEST(Utf8Blocks, ValidTextOfEveryLength0To300) {
  std::mt19937 rng(3);
  for (const bool ascii : {true, false}) {
    for (std::size_t len = 0; len <= 300; ++len) {
      const Bytes s = random_text(len, rng, ascii);
      ASSERT_TRUE(reference_valid(s));
      ASSERT_TRUE(is_valid_utf8(s)) << "len " << s.size();
    }
  }
}

// One byte replaced at every position of texts up to 300 bytes, after an ASCII prefix of every
// length 0..63 (moving it across the 8-, 16-, 32- and 64-byte steps): same verdict as the
// reference.
TEST(Utf8Blocks, OneBadByteAtEveryPositionMatchesReference) {
  std::mt19937 rng(5);
  const uint8_t bad[] = {0x80, 0xBF, 0xC0, 0xC1, 0xC3, 0xE0, 0xED,
                         0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 'a'};
  for (const bool ascii : {true, false}) {
    for (std::size_t prefix = 0; prefix < 64; prefix += 7) {
      Bytes base(prefix, 'x');
      const Bytes text = random_text(300 - prefix, rng, ascii);
      base.insert(base.end(), text.begin(), text.end());
      for (std::size_t pos = 0; pos < base.size(); ++pos) {
        Bytes s = base;
        s[pos] = bad[rng() % sizeof bad];
        ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << "prefix " << prefix << " pos " << pos;
      }
    }
  }
}

// Fed in random pieces, the verdict is the one-shot verdict, and the piece that fails is the one
// holding the first byte at which byte-by-byte feeding fails (fail-fast per call).
TEST(Utf8Blocks, ChunkedFeedingFailsInThePieceHoldingTheFirstBadByte) {
  std::mt19937 rng(9);
  for (int round = 0; round < 2000; ++round) {
    Bytes s = random_text(rng() % 400, rng, round % 2 == 0);
    if (!s.empty() && round % 3 != 0) s[rng() % s.size()] = static_cast<uint8_t>(rng());
    std::size_t first_bad = s.size();
    Utf8Validator bytewise;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (!bytewise.feed({&s[i], 1})) {
        first_bad = i;
        break;
      }
    }
    Utf8Validator v;
    std::size_t at = 0;
    bool failed = false;
    while (at < s.size()) {
      const std::size_t take = std::min<std::size_t>(s.size() - at, 1 + rng() % 80);
      const bool ok = v.feed({s.data() + at, take});
      if (!ok) {
        ASSERT_TRUE(first_bad >= at && first_bad < at + take) << "round " << round;
        failed = true;
        break;
      }
      ASSERT_TRUE(first_bad >= at + take) << "round " << round;
      at += take;
    }
    ASSERT_EQ(!failed && v.complete(), reference_valid(s)) << "round " << round;
    ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace tether::codec
