// The resume layer's one error enum (DESIGN habit 3). Every value is a peer fault: the caller
// fails the WebSocket with close_code(e) (1002 for all protocol faults, 1013 when the server
// has no room for another session). Local misuse is not reported here: the API has none that
// can fail (sending while offline is allowed and only stores the message).
#pragma once
#include <cstdint>
#include <system_error>

namespace tether::resume {

enum class Error : int {
  none = 0,
  malformed_frame,      // not M/A/H/W, bad number, bad JSON, missing field, wrong message type
  unsupported_version,  // "v" is not 1
  unexpected_frame,     // valid frame at the wrong moment (data before hello, second hello...)
  sequence_gap,         // a data seq skipped ahead of highest received + 1
  invalid_ack,          // an ack or "last" above what was sent, or below what was acked
  too_many_sessions,    // server: session table full and nothing detached to evict
};

const std::error_category& resume_category();
inline std::error_code make_error_code(Error e) { return {static_cast<int>(e), resume_category()}; }

// The close code the caller fails the connection with (RFC 6455 §7.4.1).
constexpr uint16_t close_code(Error e) { return e == Error::too_many_sessions ? 1013 : 1002; }

}  // namespace tether::resume

template <>
struct std::is_error_code_enum<tether::resume::Error> : std::true_type {};
