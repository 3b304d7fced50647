// Incremental UTF-8 validation (RFC 3629) as required by RFC 6455 §5.6 / §8.1.
#include "codec/utf8.hpp"

#include <gtest/gtest.h>

#include "utf8_reference.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace tether::codec {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes operator""_b(const char* s, std::size_t n) {
  return Bytes(reinterpret_cast<const uint8_t*>(s), reinterpret_cast<const uint8_t*>(s) + n);
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::span<const uint8_t> sub(const Bytes& b, std::size_t from, std::size_t to) {
  return std::span(b.data() + from, to - from);
}

bool reference_valid(const Bytes& s) { return tether_test::reference_valid_utf8(s); }

const std::vector<Bytes>& valid_cases() {
  static const std::vector<Bytes> cases = {
      {},
      "Hello"_b,
      "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!"_b,
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"_b,  // "κόσμε"
      Bytes{0x00},                                       // U+0000
      "\x7F"_b,                                          // U+007F
      "\xC2\x80"_b,                                      // U+0080, first 2-byte
      "\xDF\xBF"_b,                                      // U+07FF, last 2-byte
      "\xE0\xA0\x80"_b,                                  // U+0800, first 3-byte
      "\xED\x9F\xBF"_b,                                  // U+D7FF, just below surrogates
      "\xEE\x80\x80"_b,                                  // U+E000, just above surrogates
      "\xEF\xBB\xBF"_b,                                  // BOM
      "\xEF\xBF\xBD"_b,                                  // U+FFFD
      "\xEF\xBF\xBE"_b,                                  // U+FFFE (noncharacter, still valid)
      "\xEF\xBF\xBF"_b,                                  // U+FFFF
      "\xF0\x90\x80\x80"_b,                              // U+10000, first 4-byte
      "\xF3\xBF\xBF\xBF"_b,                              // U+FFFFF
      "\xF4\x8F\xBF\xBF"_b,                              // U+10FFFF, the last code point
      "\xF0\x9F\x98\x80 emoji"_b,
      Bytes(100, 'a'),                        // long ASCII: the word fast path
      cat(Bytes(13, 'x'), "\xE2\x82\xAC"_b),  // multibyte at word edge
      cat(cat(Bytes(7, 'x'), "\xF0\x9F\x98\x80"_b), Bytes(21, 'y')),  // straddles a word
  };
  return cases;
}

struct InvalidCase {
  Bytes bytes;
  std::size_t fail_at;  // index of the first byte that cannot continue a valid prefix
};

const std::vector<InvalidCase>& invalid_cases() {
  static const std::vector<InvalidCase> cases = {
      // Stray continuation bytes.
      {"\x80"_b, 0},
      {"\xBF"_b, 0},
      {"a\x80"_b, 1},
      {"\xC2\x80\x80"_b, 2},
      // Overlong encodings.
      {"\xC0\x80"_b, 0},  // overlong U+0000
      {"\xC0\xAF"_b, 0},  // overlong '/'
      {"\xC1\xBF"_b, 0},
      {"\xE0\x80\x80"_b, 1},
      {"\xE0\x80\xAF"_b, 1},
      {"\xE0\x9F\xBF"_b, 1},  // overlong U+07FF
      {"\xF0\x80\x80\x80"_b, 1},
      {"\xF0\x80\x80\xAF"_b, 1},
      {"\xF0\x8F\xBF\xBF"_b, 1},  // overlong U+FFFF
      // Surrogates U+D800..U+DFFF.
      {"\xED\xA0\x80"_b, 1},
      {"\xED\xAD\xBF"_b, 1},
      {"\xED\xBF\xBF"_b, 1},
      {"\xED\xA0\x80\xED\xB0\x80"_b, 1},  // a surrogate pair encoded as two characters
      // Above U+10FFFF.
      {"\xF4\x90\x80\x80"_b, 1},  // 0x110000
      {"\xF4\xBF\xBF\xBF"_b, 1},
      {"\xF5\x80\x80\x80"_b, 0},
      {"\xF7\xBF\xBF\xBF"_b, 0},
      {"\xF8\x88\x80\x80\x80"_b, 0},      // old 5-byte form
      {"\xFC\x84\x80\x80\x80\x80"_b, 0},  // old 6-byte form
      {"\xFE"_b, 0},
      {"\xFF"_b, 0},
      // Sequences cut short by a byte that is not a continuation.
      {"\xC2\x41"_b, 1},
      {"\xE1\x80\x41"_b, 2},
      {"\xF1\x80\x80\x41"_b, 3},
      {"\xC2\xC2\x80"_b, 1},
      {"\xE1\x80\xC2\x80"_b, 2},
      {"\xE0\xA0"
       " "_b,
       2},
      // After valid text, and after the ASCII fast path.
      {cat("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"_b, "\xED\xA0\x80"_b), 12},
      {cat(Bytes(20, 'a'), "\x80"_b), 20},
      {cat(Bytes(16, 'a'), "\xF4\x90\x80\x80"_b), 17},
      {cat(cat(Bytes(9, 'a'), "\xC3\xA9"_b), cat(Bytes(10, 'b'), "\xFF"_b)), 21},
  };
  return cases;
}

// Valid prefixes that leave a multi-byte sequence open.
const std::vector<Bytes>& truncated_cases() {
  static const std::vector<Bytes> cases = {
      "\xC2"_b,         "\xDF"_b,
      "\xE0\xA0"_b,     "\xE1\x80"_b,
      "\xED\x9F"_b,     "\xF0\x90\x80"_b,
      "\xF4\x8F\xBF"_b, "abc\xE2\x82"_b,
      "\xF1"_b,         cat(Bytes(30, 'z'), "\xF0\x9F\x98"_b),
  };
  return cases;
}

TEST(Utf8Validator, StartsComplete) {
  Utf8Validator v;
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.failed());
  EXPECT_TRUE(v.feed({}));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, AcceptsValidInOneCall) {
  for (const auto& s : valid_cases()) {
    EXPECT_TRUE(is_valid_utf8(s)) << testing::PrintToString(s);
    ASSERT_TRUE(reference_valid(s)) << "bad test case " << testing::PrintToString(s);
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s));
    EXPECT_TRUE(v.complete());
  }
}

TEST(Utf8Validator, AcceptsValidSplitAtEveryChunkSize) {
  for (const auto& s : valid_cases()) {
    for (std::size_t chunk = 1; chunk <= std::max<std::size_t>(s.size(), 1); ++chunk) {
      Utf8Validator v;
      for (std::size_t pos = 0; pos < s.size(); pos += chunk)
        ASSERT_TRUE(v.feed(sub(s, pos, std::min(s.size(), pos + chunk))));
      EXPECT_TRUE(v.complete()) << testing::PrintToString(s) << " chunk " << chunk;
    }
  }
}

TEST(Utf8Validator, AcceptsValidSplitAtEveryBoundary) {
  for (const auto& s : valid_cases()) {
    for (std::size_t split = 0; split <= s.size(); ++split) {
      Utf8Validator v;
      ASSERT_TRUE(v.feed(sub(s, 0, split)));
      ASSERT_TRUE(v.feed(sub(s, split, s.size())));
      EXPECT_TRUE(v.complete());
    }
  }
}

TEST(Rfc6455_8_1, InvalidUtf8Rejected) {
  for (const auto& c : invalid_cases()) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    ASSERT_FALSE(reference_valid(c.bytes)) << "bad test case";
    EXPECT_FALSE(is_valid_utf8(c.bytes));
    Utf8Validator v;
    EXPECT_FALSE(v.feed(c.bytes));
    EXPECT_TRUE(v.failed());
    EXPECT_FALSE(v.complete());
  }
}

TEST(Rfc6455_8_1, FailsAtFirstInvalidByteFedByteByByte) {
  for (const auto& c : invalid_cases()) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    Utf8Validator v;
    for (std::size_t i = 0; i < c.bytes.size(); ++i) {
      const bool ok = v.feed(sub(c.bytes, i, i + 1));
      if (i < c.fail_at) {
        ASSERT_TRUE(ok) << "rejected early at " << i;
      } else if (i == c.fail_at) {
        ASSERT_FALSE(ok) << "not rejected at " << i;
        EXPECT_TRUE(v.failed());
      } else {
        ASSERT_FALSE(ok) << "failure must be sticky";
      }
    }
  }
}

TEST(Rfc6455_8_1, FailsAtFirstInvalidByteFedAsPrefixes) {
  // Same property through the word-at-a-time path: a prefix up to (not including) the bad byte
  // is a valid prefix; any prefix including it is rejected.
  for (const auto& c : invalid_cases()) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    for (std::size_t len = 0; len <= c.bytes.size(); ++len) {
      Utf8Validator v;
      EXPECT_EQ(v.feed(sub(c.bytes, 0, len)), len <= c.fail_at) << "prefix " << len;
    }
  }
}

TEST(Rfc6455_8_1, InvalidRejectedAcrossEveryChunkBoundary) {
  // A fragmented message: the offending sequence may span fragments (§5.4 + §8.1).
  for (const auto& c : invalid_cases()) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    for (std::size_t split = 0; split <= c.bytes.size(); ++split) {
      Utf8Validator v;
      const bool first = v.feed(sub(c.bytes, 0, split));
      EXPECT_EQ(first, split <= c.fail_at) << "split " << split;
      EXPECT_FALSE(first && v.feed(sub(c.bytes, split, c.bytes.size()))) << "split " << split;
      EXPECT_TRUE(v.failed());
    }
  }
}

TEST(Rfc6455_8_1, TruncatedSequenceIsNotComplete) {
  for (const auto& s : truncated_cases()) {
    SCOPED_TRACE(testing::PrintToString(s));
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s)) << "a truncated sequence is still a valid prefix";
    EXPECT_FALSE(v.complete());
    EXPECT_FALSE(v.failed());
    EXPECT_FALSE(is_valid_utf8(s));
  }
}

TEST(Utf8Validator, TruncatedSequenceCompletesInNextFragment) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xF0\x9F"_b));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\x98"_b));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\x80"_b));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, FailureIsStickyUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xFF"_b));
  EXPECT_FALSE(v.feed("valid ascii"_b));
  EXPECT_FALSE(v.feed({}));
  EXPECT_TRUE(v.failed());
  v.reset();
  EXPECT_FALSE(v.failed());
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("valid ascii"_b));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, ResetClearsOpenSequence) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xE2\x82"_b));
  v.reset();
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("a"_b));
}

TEST(Utf8Validator, MatchesReferenceForAllOneAndTwoByteInputs) {
  for (int a = 0; a < 256; ++a) {
    const Bytes one = {static_cast<uint8_t>(a)};
    ASSERT_EQ(is_valid_utf8(one), reference_valid(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const Bytes two = {static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
      ASSERT_EQ(is_valid_utf8(two), reference_valid(two)) << a << " " << b;
    }
  }
}

TEST(Utf8Validator, MatchesReferenceForAllThreeByteSequencesWithMultibyteLead) {
  Bytes s(3);
  for (int a = 0xC0; a < 0x100; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        s[0] = static_cast<uint8_t>(a), s[1] = static_cast<uint8_t>(b);
        s[2] = static_cast<uint8_t>(c);
        ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c;
      }
    }
  }
}

TEST(Utf8Validator, MatchesReferenceForFourByteLeads) {
  const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
  Bytes s(4);
  for (int a = 0xF0; a < 0x100; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (const uint8_t c : tails) {
        for (const uint8_t d : tails) {
          s = {static_cast<uint8_t>(a), static_cast<uint8_t>(b), c, d};
          ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tether::codec
