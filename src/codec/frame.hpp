// RFC 6455 §5.2 base framing: frame header encode/decode on byte spans.
// No state beyond one header, no clock, no socket.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace tether::codec {

// §5.2 opcodes. 0x3-0x7 and 0xB-0xF are reserved (§5.2: MUST fail the connection).
enum class Opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

constexpr bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }
constexpr bool is_known_opcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

// Largest header: 2 bytes + 8 length + 4 mask key.
inline constexpr std::size_t max_header_size = 14;
// §5.5: control frames carry at most 125 payload bytes.
inline constexpr std::size_t max_control_payload = 125;

struct FrameHeader {
  bool fin = true;
  bool rsv1 = false, rsv2 = false, rsv3 = false;
  Opcode opcode = Opcode::text;
  bool masked = false;
  uint32_t mask_key = 0;  // the 4 key bytes in wire order, loaded as memcpy (native) from the wire
  uint64_t payload_len = 0;
};

enum class HeaderStatus {
  ok,                  // header parsed; `consumed` bytes belong to it
  need_more,           // not enough bytes yet; nothing consumed
  non_minimal_length,  // §5.2: the minimal number of bytes MUST be used to encode the length
  length_msb_set,      // §5.2: 64-bit length's most significant bit MUST be 0
};

// Parses one frame header from the start of `in`. Does NOT judge opcode/RSV/mask semantics
// (that is the protocol layer's job, since it depends on role and extensions); it only decodes.
// On `ok`, `consumed` is the header size (2..14).
HeaderStatus parse_header(std::span<const uint8_t> in, FrameHeader& out, std::size_t& consumed);

// Header size for a given payload length and masking.
constexpr std::size_t header_size(uint64_t payload_len, bool masked) {
  return 2 + (payload_len < 126 ? 0 : payload_len <= 0xFFFF ? 2 : 8) + (masked ? 4 : 0);
}

// Writes the header (minimal length encoding) to `out`, which must hold max_header_size bytes.
// Returns bytes written.
std::size_t encode_header_any(const FrameHeader& h, uint8_t* out);

// An unmasked header with a 7-bit or 16-bit length (every frame under 64 KiB a server sends):
// the first byte `b0` (FIN, RSV bits, opcode), then the minimal length (§5.2). Two or four
// bytes; `len` <= 0xFFFF.
inline std::size_t encode_short_header(uint8_t b0, std::size_t len, uint8_t* out) {
  out[0] = b0;
  if (len < 126) {
    out[1] = static_cast<uint8_t>(len);
    return 2;
  }
  out[1] = 126;  // §5.2: the 16-bit length, big-endian
  out[2] = static_cast<uint8_t>(len >> 8);
  out[3] = static_cast<uint8_t>(len);
  return 4;
}

inline std::size_t encode_header(const FrameHeader& h, uint8_t* out) {
  // Fast path, inline: unmasked with a 7-bit or 16-bit length.
  if (!h.masked && h.payload_len <= 0xFFFF)
    return encode_short_header(
        static_cast<uint8_t>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                             (h.rsv3 ? 0x10 : 0) | (static_cast<uint8_t>(h.opcode) & 0x0F)),
        static_cast<std::size_t>(h.payload_len), out);
  return encode_header_any(h, out);
}

}  // namespace tether::codec
