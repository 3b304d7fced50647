// Incremental UTF-8 validation (RFC 3629 §3/§4) as a byte-class DFA, used for text messages and
// close reasons (RFC 6455 §5.6, §8.1). The DFA only admits well-formed sequences, so the first
// byte that cannot extend a valid prefix drives it straight to the reject state (fail-fast).
#include "codec/utf8.hpp"

#include <array>
#include <cstring>

namespace tether::codec {
namespace {

// Byte classes (plain constants rather than enums so table index arithmetic stays warning-free).
// Continuation bytes are split by the ranges that the second byte of E0, ED, F0 and F4
// sequences are restricted to (RFC 3629 §4, the UTF8-3 / UTF8-4 rules).
namespace cls {
constexpr uint8_t ascii = 0;       // 00..7F
constexpr uint8_t cont_80_8f = 1;  // 80..8F
constexpr uint8_t cont_90_9f = 2;  // 90..9F
constexpr uint8_t cont_a0_bf = 3;  // A0..BF
constexpr uint8_t invalid = 4;     // C0, C1 (overlong 2-byte leads), F5..FF (beyond U+10FFFF)
constexpr uint8_t lead2 = 5;       // C2..DF
constexpr uint8_t lead_e0 = 6;     // E0: second byte A0..BF (else overlong)
constexpr uint8_t lead3 = 7;       // E1..EC, EE, EF
constexpr uint8_t lead_ed = 8;     // ED: second byte 80..9F (else surrogate U+D800..U+DFFF)
constexpr uint8_t lead_f0 = 9;     // F0: second byte 90..BF (else overlong)
constexpr uint8_t lead4 = 10;      // F1..F3
constexpr uint8_t lead_f4 = 11;    // F4: second byte 80..8F (else > U+10FFFF)
constexpr std::size_t count = 12;
}  // namespace cls

// DFA states: how much of a sequence is still owed, and any restriction on the next byte.
namespace st {
constexpr uint8_t accept = 0;    // between characters
constexpr uint8_t need1 = 1;     // one continuation byte (80..BF) still owed
constexpr uint8_t need2 = 2;     // two
constexpr uint8_t need3 = 3;     // three
constexpr uint8_t after_e0 = 4;  // then A0..BF, then 1 more
constexpr uint8_t after_ed = 5;  // then 80..9F, then 1 more
constexpr uint8_t after_f0 = 6;  // then 90..BF, then 2 more
constexpr uint8_t after_f4 = 7;  // then 80..8F, then 2 more
constexpr std::size_t count = 8;
}  // namespace st

constexpr uint8_t reject = 0xFF;

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> c{};
  for (unsigned b = 0; b < 256; ++b) {
    uint8_t k = cls::invalid;  // C0, C1, F5..FF
    if (b <= 0x7F) {
      k = cls::ascii;
    } else if (b <= 0x8F) {
      k = cls::cont_80_8f;
    } else if (b <= 0x9F) {
      k = cls::cont_90_9f;
    } else if (b <= 0xBF) {
      k = cls::cont_a0_bf;
    } else if (b >= 0xC2 && b <= 0xDF) {
      k = cls::lead2;
    } else if (b == 0xE0) {
      k = cls::lead_e0;
    } else if (b == 0xED) {
      k = cls::lead_ed;
    } else if (b >= 0xE1 && b <= 0xEF) {
      k = cls::lead3;
    } else if (b == 0xF0) {
      k = cls::lead_f0;
    } else if (b >= 0xF1 && b <= 0xF3) {
      k = cls::lead4;
    } else if (b == 0xF4) {
      k = cls::lead_f4;
    }
    c[b] = k;
  }
  return c;
}

constexpr std::array<uint8_t, st::count * cls::count> make_transitions() {
  std::array<uint8_t, st::count * cls::count> t{};
  for (auto& e : t) e = reject;  // anything not listed below is ill-formed
  auto set = [&t](uint8_t from, uint8_t byte_cls, uint8_t to) {
    t[from * cls::count + byte_cls] = to;
  };

  set(st::accept, cls::ascii, st::accept);
  set(st::accept, cls::lead2, st::need1);
  set(st::accept, cls::lead_e0, st::after_e0);
  set(st::accept, cls::lead3, st::need2);
  set(st::accept, cls::lead_ed, st::after_ed);
  set(st::accept, cls::lead_f0, st::after_f0);
  set(st::accept, cls::lead4, st::need3);
  set(st::accept, cls::lead_f4, st::after_f4);

  for (const uint8_t cont : {cls::cont_80_8f, cls::cont_90_9f, cls::cont_a0_bf}) {
    set(st::need1, cont, st::accept);
    set(st::need2, cont, st::need1);
    set(st::need3, cont, st::need2);
  }
  set(st::after_e0, cls::cont_a0_bf, st::need1);
  set(st::after_ed, cls::cont_80_8f, st::need1);
  set(st::after_ed, cls::cont_90_9f, st::need1);
  set(st::after_f0, cls::cont_90_9f, st::need2);
  set(st::after_f0, cls::cont_a0_bf, st::need2);
  set(st::after_f4, cls::cont_80_8f, st::need2);
  return t;
}

constexpr auto byte_class = make_classes();
constexpr auto transitions = make_transitions();

// Spot checks of the tables at compile time.
static_assert(byte_class[0xC0] == cls::invalid && byte_class[0xC2] == cls::lead2);
static_assert(byte_class[0xF5] == cls::invalid && byte_class[0xFF] == cls::invalid);
static_assert(transitions[st::after_ed * cls::count + cls::cont_a0_bf] == reject);
static_assert(transitions[st::after_f4 * cls::count + cls::cont_90_9f] == reject);

constexpr uint64_t high_bits = 0x8080808080808080ull;

}  // namespace

bool Utf8Validator::feed(std::span<const uint8_t> bytes) {
  static_assert(reject == reject_, "the DFA's reject state must match Utf8Validator::reject_");
  if (state_ == reject_) return false;

  const uint8_t* p = bytes.data();
  const uint8_t* const end = p + bytes.size();
  uint32_t state = state_;
  while (p != end) {
    // ASCII fast path: between characters, skip whole 8-byte words with no high bit set.
    // Entered only on an ASCII byte so non-Latin text does not pay for a failing word test.
    if (state == st::accept && *p < 0x80) {
      while (end - p >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        if ((w & high_bits) != 0) break;
        p += 8;
      }
      if (p == end) break;
    }
    state = transitions[state * cls::count + byte_class[*p]];
    ++p;
    if (state == reject) {
      state_ = reject_;
      return false;
    }
  }
  state_ = state;
  return true;
}

bool is_valid_utf8(std::span<const uint8_t> bytes) {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace tether::codec
