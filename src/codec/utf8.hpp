// Incremental UTF-8 validation (RFC 3629) for text messages and close reasons (RFC 6455 §8.1).
// Fails fast: reports invalid at the first byte that cannot start or continue a valid sequence,
// even when the message is fragmented and the sequence spans fragments.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace tether::codec {

class Utf8Validator {
 public:
  // Feeds more bytes. Returns false as soon as the input so far cannot be a prefix of valid
  // UTF-8 (overlongs, surrogates U+D800..U+DFFF, > U+10FFFF, bad continuation bytes).
  // After false the validator stays failed until reset().
  bool feed(std::span<const uint8_t> bytes);
  // True when everything fed is valid and no multi-byte sequence is left open.
  bool complete() const { return state_ == 0; }
  bool failed() const { return state_ == reject_; }
  void reset() { state_ = 0; }

 private:
  // The DFA state as utf8.cpp's shift-based table holds it (state index * 6; 0 = between
  // characters, 48 = reject); the implementation may change the representation.
  static constexpr uint8_t reject_ = 48;
  uint32_t state_ = 0;
};

// One-shot check of a whole buffer.
bool is_valid_utf8(std::span<const uint8_t> bytes);

}  // namespace tether::codec
