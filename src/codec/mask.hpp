// RFC 6455 §5.3 client-to-server masking.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tether::codec {

// XORs `n` bytes at `data` with the 4-byte key (wire order, as FrameHeader::mask_key holds it),
// starting at key position `offset % 4` (so a payload can be unmasked across several reads).
// Works 16 bytes at a time (vector extensions: SSE2 / NEON), then words, then bytes. Returns the
// key offset after the last byte, i.e. (offset + n) % 4, to pass on the next call.
std::size_t apply_mask(uint8_t* data, std::size_t n, uint32_t mask_key, std::size_t offset = 0);

}  // namespace tether::codec
