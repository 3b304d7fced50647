// RFC 6455 §5.3 client-to-server masking.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tether::codec {

// XORs `n` bytes at `data` with the 4-byte key (wire order, as FrameHeader::mask_key holds it),
// starting at key position `offset % 4` (so a payload can be unmasked across several reads).
// Works 16 bytes at a time (vector extensions: SSE2 / NEON), then words, then bytes. Returns the
// key offset after the last byte, i.e. (offset + n) % 4, to pass on the next call.
std::size_t apply_mask_any(uint8_t* data, std::size_t n, uint32_t mask_key, std::size_t offset);

inline std::size_t apply_mask(uint8_t* data, std::size_t n, uint32_t mask_key,
                              std::size_t offset = 0) {
  // Fast path, inline: a payload of up to 16 bytes starting in phase with the key (a whole
  // small frame, the common case for chat and RPC traffic), two 8-byte words at most.
  if (n <= 16 && offset % 4 == 0) {
    const uint64_t k64 = (uint64_t{mask_key} << 32) | mask_key;  // key bytes twice, memory order
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, data + i, 8);
      w ^= k64;
      std::memcpy(data + i, &w, 8);
    }
    if (i < n) {
      uint8_t k8[8];
      std::memcpy(k8, &k64, 8);
      for (std::size_t j = 0; i < n; ++i, ++j) data[i] ^= k8[j];
    }
    return n % 4;
  }
  return apply_mask_any(data, n, mask_key, offset);
}

}  // namespace tether::codec
