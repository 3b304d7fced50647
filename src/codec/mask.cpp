// RFC 6455 §5.3 masking: octet i of the payload is XORed with key octet (i MOD 4).
// The same operation masks and unmasks.
#include "codec/mask.hpp"

#include <cstring>

namespace tether::codec {

std::size_t apply_mask(uint8_t* data, std::size_t n, uint32_t mask_key, std::size_t offset) {
  const std::size_t result = (offset + n) % 4;
  if (n == 0) return result;

  uint8_t key[4];
  std::memcpy(key, &mask_key, 4);  // wire order, as parse_header stored it
  offset %= 4;

  // Head: byte loop until `data` is 8-byte aligned, so the word loop touches aligned memory.
  // (Loads still go through memcpy, which is what keeps them legal on any alignment.)
  const auto misalign = reinterpret_cast<std::uintptr_t>(data) % 8;
  std::size_t head = misalign == 0 ? 0 : 8 - misalign;
  if (head > n) head = n;
  for (std::size_t i = 0; i < head; ++i) {
    data[i] ^= key[offset];
    offset = (offset + 1) % 4;
  }
  data += head;
  n -= head;

  if (n >= 8) {
    // Key rotated to the current offset and repeated twice, laid out in memory order so the
    // XOR is endian-independent.
    uint8_t rotated[8];
    for (std::size_t i = 0; i < 8; ++i) rotated[i] = key[(offset + i) % 4];
    uint64_t key64;
    std::memcpy(&key64, rotated, 8);

    // 8 bytes keep the key phase, so `offset` is unchanged by the word loop.
    std::size_t words = n / 8;
    while (words-- > 0) {
      uint64_t w;
      std::memcpy(&w, data, 8);
      w ^= key64;
      std::memcpy(data, &w, 8);
      data += 8;
    }
    n %= 8;
  }

  // Tail.
  for (std::size_t i = 0; i < n; ++i) {
    data[i] ^= key[offset];
    offset = (offset + 1) % 4;
  }
  return result;
}

}  // namespace tether::codec
