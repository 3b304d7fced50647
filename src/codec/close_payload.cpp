// RFC 6455 §5.5.1 close frame bodies and §7.4 status codes.
#include "codec/close_payload.hpp"

#include <cstring>

#include "codec/utf8.hpp"

namespace tether::codec {

bool is_valid_wire_close_code(uint16_t code) {
  // §7.4.1 defines 1000-1011 and 1015; 1004 is reserved and 1005/1006/1015 "MUST NOT be set as
  // a status code in a Close control frame". 1012-1014 were registered with IANA later (§11.7).
  // §7.4.2: 0-999 unused, 1000-2999 reserved for the spec/extensions, 3000-4999 for
  // libraries/frameworks and applications.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

// `out` is only written on `ok`.
ClosePayloadStatus parse_close_payload(std::span<const uint8_t> body, ClosePayload& out) {
  if (body.empty()) {
    // §7.1.5: no status code present -> 1005.
    out.code = 1005;
    out.reason = {};
    return ClosePayloadStatus::ok;
  }
  // §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
  // integer (in network byte order)".
  if (body.size() < 2) return ClosePayloadStatus::one_byte;
  const auto code = static_cast<uint16_t>((static_cast<uint16_t>(body[0]) << 8) | body[1]);
  if (!is_valid_wire_close_code(code)) return ClosePayloadStatus::invalid_code;
  const auto reason = body.subspan(2);
  // §5.5.1: the reason "is not guaranteed to be human readable" but MUST be UTF-8.
  if (!is_valid_utf8(reason)) return ClosePayloadStatus::invalid_utf8;
  out.code = code;
  out.reason = std::string_view(reinterpret_cast<const char*>(reason.data()), reason.size());
  return ClosePayloadStatus::ok;
}

std::size_t encode_close_payload(uint16_t code, std::string_view reason, uint8_t* out) {
  // §7.4.1: 1005 means "no status code", which is expressed by an empty body.
  if (code == 1005) return 0;
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code);
  if (!reason.empty()) std::memcpy(out + 2, reason.data(), reason.size());
  return 2 + reason.size();
}

}  // namespace tether::codec
