// A UTF-8 validator written straight from the RFC 3629 definition, independent of the codec's
// table-driven one: decode a code point, then reject overlongs, surrogates and values above
// U+10FFFF. The codec's validator is checked against it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tether_test {

inline bool reference_valid_utf8(const std::vector<uint8_t>& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = s[i];
    std::size_t len;
    uint32_t cp;
    if (b < 0x80) {
      len = 1, cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

}  // namespace tether_test
