// RFC 6455 §5.2 base framing: header decode/encode. No allocation, no exceptions.
#include "codec/frame.hpp"

#include <cstring>

namespace tether::codec {
namespace {

// §5.2: multibyte length quantities are expressed in network byte order (big-endian).
uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>((static_cast<uint16_t>(p[0]) << 8) | p[1]);
}

uint64_t load_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void store_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

constexpr uint8_t len16_marker = 126;
constexpr uint8_t len64_marker = 127;

}  // namespace

HeaderStatus parse_header(std::span<const uint8_t> in, FrameHeader& out, std::size_t& consumed) {
  if (in.size() < 2) return HeaderStatus::need_more;
  const uint8_t b0 = in[0];
  const uint8_t b1 = in[1];
  const uint8_t len7 = b1 & 0x7F;
  const bool masked = (b1 & 0x80) != 0;

  const std::size_t ext_len = len7 == len16_marker ? 2 : len7 == len64_marker ? 8 : 0;
  // Judge the length as soon as its bytes are here (before the mask key) so a bad
  // encoding fails the connection without waiting for more input.
  if (in.size() < 2 + ext_len) return HeaderStatus::need_more;

  uint64_t payload_len = len7;
  if (len7 == len16_marker) {
    payload_len = load_be16(in.data() + 2);
    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    if (payload_len < len16_marker) return HeaderStatus::non_minimal_length;
  } else if (len7 == len64_marker) {
    payload_len = load_be64(in.data() + 2);
    // §5.2: "the most significant bit MUST be 0".
    if ((payload_len >> 63) != 0) return HeaderStatus::length_msb_set;
    if (payload_len <= 0xFFFF) return HeaderStatus::non_minimal_length;
  }

  const std::size_t total = 2 + ext_len + (masked ? 4 : 0);
  if (in.size() < total) return HeaderStatus::need_more;

  out.fin = (b0 & 0x80) != 0;
  out.rsv1 = (b0 & 0x40) != 0;
  out.rsv2 = (b0 & 0x20) != 0;
  out.rsv3 = (b0 & 0x10) != 0;
  // Reserved opcodes are passed through unjudged; the protocol layer rejects them (§5.2).
  out.opcode = static_cast<Opcode>(b0 & 0x0F);
  out.masked = masked;
  out.payload_len = payload_len;
  out.mask_key = 0;
  // §5.3: the key is 4 raw bytes; keep them in wire order so apply_mask can memcpy them back.
  if (masked) std::memcpy(&out.mask_key, in.data() + 2 + ext_len, 4);
  consumed = total;
  return HeaderStatus::ok;
}

std::size_t encode_header_any(const FrameHeader& h, uint8_t* out) {
  out[0] = static_cast<uint8_t>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                (h.rsv3 ? 0x10 : 0) | (static_cast<uint8_t>(h.opcode) & 0x0F));
  const uint8_t mask_bit = h.masked ? 0x80 : 0;
  std::size_t pos = 2;
  // §5.2: always the minimal length encoding.
  if (h.payload_len < len16_marker) {
    out[1] = static_cast<uint8_t>(mask_bit | h.payload_len);
  } else if (h.payload_len <= 0xFFFF) {
    out[1] = mask_bit | len16_marker;
    store_be16(out + pos, static_cast<uint16_t>(h.payload_len));
    pos += 2;
  } else {
    out[1] = mask_bit | len64_marker;
    store_be64(out + pos, h.payload_len);
    pos += 8;
  }
  if (h.masked) {
    std::memcpy(out + pos, &h.mask_key, 4);
    pos += 4;
  }
  return pos;
}

}  // namespace tether::codec
