// RFC 6455 §5.3 masking: octet i of the payload is XORed with key octet (i MOD 4).
// The same operation masks and unmasks.
#include "codec/mask.hpp"

#include <cstring>

namespace tether::codec {
namespace {

// The key as a 4-byte pattern starting at key octet `offset`, laid out in memory order, so that
// XORing it at any 4-byte multiple from the current byte applies the right octets whatever the
// machine's endianness.
uint32_t rotated_key(const uint8_t (&key)[4], std::size_t offset) {
  uint8_t r[4];
  for (std::size_t i = 0; i < 4; ++i) r[i] = key[(offset + i) % 4];
  uint32_t k;
  std::memcpy(&k, r, 4);
  return k;
}

#if defined(__GNUC__)
// 16 bytes at a time through GCC/Clang vector extensions: SSE2 on x86-64 (always there), NEON
// on ARM, plain words elsewhere. memcpy keeps every load and store legal at any alignment; the
// compilers turn it into one unaligned vector move.
typedef uint8_t Bytes16 __attribute__((vector_size(16)));

void xor16(uint8_t* p, const Bytes16& k) {
  Bytes16 v;
  std::memcpy(&v, p, 16);
  v ^= k;
  std::memcpy(p, &v, 16);
}
#endif

#if defined(__GNUC__) && defined(__x86_64__)
// 32 bytes at a time where the CPU has AVX2 (checked once at run time; the build targets plain
// x86-64): half the instructions of the SSE2 loop on long payloads. Returns the bytes done, a
// multiple of 32; the caller finishes the rest, still in phase (32 is a multiple of 4).
typedef uint8_t Bytes32 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) inline void xor32(uint8_t* p, const Bytes32& k) {
  Bytes32 v;
  std::memcpy(&v, p, 32);
  v ^= k;
  std::memcpy(p, &v, 32);
}

__attribute__((target("avx2"))) std::size_t xor_avx2(uint8_t* data, std::size_t n, uint32_t k32) {
  uint8_t pattern[32];
  for (std::size_t i = 0; i < 32; i += 4) std::memcpy(pattern + i, &k32, 4);
  Bytes32 k;
  std::memcpy(&k, pattern, 32);
  std::size_t done = 0;
  for (; n - done >= 128; done += 128) {
    xor32(data + done, k);
    xor32(data + done + 32, k);
    xor32(data + done + 64, k);
    xor32(data + done + 96, k);
  }
  for (; n - done >= 32; done += 32) xor32(data + done, k);
  return done;
}

bool has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
#else
constexpr bool has_avx2() { return false; }
#endif

}  // namespace

std::size_t apply_mask_any(uint8_t* data, std::size_t n, uint32_t mask_key, std::size_t offset) {
  const std::size_t result = (offset + n) % 4;
  if (n == 0) return result;

  uint8_t key[4];
  std::memcpy(key, &mask_key, 4);  // wire order, as parse_header stored it
  offset %= 4;

  // Large payloads: up to vector alignment (32 bytes with AVX2, else 16) first, so no vector
  // store splits a cache line. Smaller ones (most messages) go straight to unaligned moves: up
  // to a few KiB the head loop costs more than the split lines it saves (1 KiB at start +3:
  // 18 ns without it, 24 with it).
  constexpr std::size_t kAlignFrom = 4096;
  const bool wide = n >= 256 && has_avx2();
  if (n >= kAlignFrom) {
    const std::size_t align = wide ? 32 : 16;
    const auto misalign = reinterpret_cast<std::uintptr_t>(data) % align;
    const std::size_t head = misalign == 0 ? 0 : align - misalign;
    for (std::size_t i = 0; i < head; ++i) data[i] ^= key[(offset + i) % 4];
    data += head;
    n -= head;
    offset = (offset + head) % 4;
  }

  // Every step below consumes a multiple of 4 bytes, so the key phase stays at `offset`.
  const uint32_t k32 = rotated_key(key, offset);
#if defined(__GNUC__) && defined(__x86_64__)
  if (wide) {
    const std::size_t done = xor_avx2(data, n, k32);
    data += done;
    n -= done;
  }
#endif
#if defined(__GNUC__)
  if (n >= 16) {
    uint8_t pattern[16];
    for (std::size_t i = 0; i < 16; i += 4) std::memcpy(pattern + i, &k32, 4);
    Bytes16 k16;
    std::memcpy(&k16, pattern, 16);
    for (; n >= 64; data += 64, n -= 64) {
      xor16(data, k16);
      xor16(data + 16, k16);
      xor16(data + 32, k16);
      xor16(data + 48, k16);
    }
    for (; n >= 16; data += 16, n -= 16) xor16(data, k16);
  }
#endif
  uint8_t k8[8];
  std::memcpy(k8, &k32, 4);
  std::memcpy(k8 + 4, &k32, 4);
  uint64_t k64;
  std::memcpy(&k64, k8, 8);
  for (; n >= 8; data += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    w ^= k64;
    std::memcpy(data, &w, 8);
  }
  // Tail: fewer than 8 bytes, still in phase with k8.
  for (std::size_t i = 0; i < n; ++i) data[i] ^= k8[i];
  return result;
}

}  // namespace tether::codec
