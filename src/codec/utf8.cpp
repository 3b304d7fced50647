// Incremental UTF-8 validation (RFC 3629 §3/§4) as a byte-class DFA, used for text messages and
// close reasons (RFC 6455 §5.6, §8.1). The DFA only admits well-formed sequences, so the first
// byte that cannot extend a valid prefix drives it straight to the reject state (fail-fast).
#include "codec/utf8.hpp"

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The DFA again as a shift-based table (one 64-bit row per byte value): state i is stored as
// the shift i * kBits, and row[b] holds, at bit kBits * i, the shift of the state that byte b
// leads to from state i. A step is then `(row[b] >> state) & 63`: the row load does not depend
// on the state, so the chain from one byte to the next is a shift and a mask (about 2 cycles)
// instead of the index arithmetic and dependent load of the two-table form above.
constexpr unsigned kBits = 6;
constexpr unsigned kRejectIndex = st::count;  // 8: one more state after the 8 above
constexpr uint64_t kRejectShift = kRejectIndex * kBits;
static_assert(kRejectShift + kBits <= 64, "9 states of 6 bits fit a 64-bit row");

constexpr std::array<uint64_t, 256> make_rows() {
  std::array<uint64_t, 256> rows{};
  for (unsigned b = 0; b < 256; ++b) {
    uint64_t row = uint64_t{kRejectShift} << kRejectShift;  // reject is absorbing
    for (unsigned s = 0; s < st::count; ++s) {
      const uint8_t next = transitions[s * cls::count + byte_class[b]];
      const uint64_t index = next == reject ? kRejectIndex : next;
      row |= (index * kBits) << (s * kBits);
    }
    rows[b] = row;
  }
  return rows;
}

constexpr auto rows = make_rows();

constexpr uint64_t step(uint64_t state, uint8_t byte) { return (rows[byte] >> state) & 63; }
static_assert(step(0, 'a') == 0 && step(0, 0xC3) == st::need1 * kBits);
static_assert(step(st::need1 * kBits, 0xA9) == 0 && step(0, 0xC0) == kRejectShift);
static_assert(step(kRejectShift, 'a') == kRejectShift);

// ASCII needs no DFA: returns the first position at or after `p` that may hold a byte >= 0x80
// (whole 16-byte blocks, then words, then single bytes are skipped).
const uint8_t* skip_ascii(const uint8_t* p, const uint8_t* end) {
#if defined(__SSE2__)
  // 64 bytes per test: OR four 16-byte loads, then one pmovmskb of the high bits.
  auto load = [](const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  while (end - p >= 64) {
    const __m128i v =
        _mm_or_si128(_mm_or_si128(load(p), load(p + 16)), _mm_or_si128(load(p + 32), load(p + 48)));
    if (_mm_movemask_epi8(v) != 0) break;
    p += 64;
  }
  while (end - p >= 16 && _mm_movemask_epi8(load(p)) == 0) p += 16;
#elif defined(__GNUC__)
  // The same with GCC/Clang vector extensions (NEON on ARM, words elsewhere).
  typedef uint8_t Bytes16 __attribute__((vector_size(16)));
  auto load = [](const uint8_t* q) {
    Bytes16 v;
    std::memcpy(&v, q, 16);
    return v;
  };
  auto any_high = [](Bytes16 v) {
    uint64_t w[2];
    std::memcpy(w, &v, 16);
    return ((w[0] | w[1]) & 0x8080808080808080ull) != 0;
  };
  while (end - p >= 64 && !any_high(load(p) | load(p + 16) | load(p + 32) | load(p + 48))) p += 64;
  while (end - p >= 16 && !any_high(load(p))) p += 16;
#endif
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if ((w & 0x8080808080808080ull) != 0) break;
    p += 8;
  }
  while (p != end && *p < 0x80) ++p;
  return p;
}

}  // namespace

bool Utf8Validator::feed(std::span<const uint8_t> bytes) {
  static_assert(kRejectShift == reject_, "the reject state must match Utf8Validator::reject_");
  if (state_ == reject_) return false;

  const uint8_t* p = bytes.data();
  const uint8_t* const end = p + bytes.size();
  uint64_t state = state_;  // already a shift (utf8.hpp)
  while (p != end) {
    // Between characters, ASCII runs are skipped without the DFA.
    if (state == 0) {
      p = skip_ascii(p, end);
      if (p == end) break;
    }
    // Then up to 32 bytes through the DFA with no branch per byte; reject is absorbing, so one
    // check per block still fails the feed() that holds the first bad byte (fail-fast per call).
    const uint8_t* const stop = end - p > 32 ? p + 32 : end;
    while (p != stop) state = step(state, *p++);
    if (state == kRejectShift) {
      state_ = reject_;
      return false;
    }
  }
  state_ = static_cast<uint32_t>(state);
  return true;
}

bool is_valid_utf8(std::span<const uint8_t> bytes) {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace tether::codec
