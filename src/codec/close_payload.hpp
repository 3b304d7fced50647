// RFC 6455 §5.5.1 close frame bodies and §7.4 status codes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tether::codec {

// §7.4.1/§7.4.2: may this code appear in a Close frame on the wire?
// Valid: 1000-1003, 1007-1011 (and 1012-1014, registered by IANA since), 3000-4999.
// Never on the wire: 1004 (reserved), 1005, 1006, 1015, anything < 1000, 1016-2999, >= 5000.
bool is_valid_wire_close_code(uint16_t code);

enum class ClosePayloadStatus {
  ok,            // code/reason filled (code 1005 "no status" when the body is empty)
  one_byte,      // §5.5.1: a body, if present, MUST start with a 2-byte code -> 1002
  invalid_code,  // §7.4: code not allowed on the wire -> 1002
  invalid_utf8,  // §5.5.1: reason MUST be UTF-8 -> 1007
};

struct ClosePayload {
  uint16_t code = 1005;     // 1005: no status code was present
  std::string_view reason;  // points into the parsed buffer
};

ClosePayloadStatus parse_close_payload(std::span<const uint8_t> body, ClosePayload& out);

// Writes code (big-endian) + reason to `out` (must hold 2 + reason.size() bytes; the caller
// keeps the total within 125 bytes). Code 1005 writes an empty body. Returns bytes written.
std::size_t encode_close_payload(uint16_t code, std::string_view reason, uint8_t* out);

}  // namespace tether::codec
