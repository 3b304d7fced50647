// Why a connection ended: the close code and reason as the WebSocket API reports them
// (RFC 6455 §7.1.5, §7.1.6), whether the closing handshake completed (§7.1.5 "cleanly"),
// and tether's own `cause`, which says what actually happened.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tether {

enum class Cause : uint8_t {
  remote_close,       // the peer started the closing handshake
  local_close,        // the application called close()
  heartbeat_timeout,  // nothing received for ping-interval + ping-timeout
  idle_timeout,       // no application message for idle-timeout
  handshake_timeout,  // opening handshake did not finish in time
  network_error,      // TCP reset / EOF without a close frame / write error (code 1006)
  protocol_error,     // the peer broke RFC 6455 (we sent 1002/1007/1009 and dropped it)
  connect_failed,     // TCP connect or DNS failed (client)
  handshake_failed,   // HTTP upgrade refused or invalid (client or server)
};
// Number of Cause values, for arrays indexed by cause (metrics). Keep handshake_failed last.
inline constexpr std::size_t cause_count = static_cast<std::size_t>(Cause::handshake_failed) + 1;

// The `cause` strings used by the CLI's JSON events (CONTRACT.md).
std::string_view to_string(Cause cause);

struct CloseInfo {
  // The code the peer sent (or 1005 when its close frame had none, 1006 when there was no
  // close frame at all), matching what a browser's CloseEvent.code reports. When we fail
  // the connection for a protocol error, it is the code we sent (1002, 1007, 1009...).
  uint16_t code = 1006;
  std::string reason;
  bool was_clean = false;  // the closing handshake completed in both directions
  Cause cause = Cause::network_error;
};

// Close codes (RFC 6455 §7.4.1 plus IANA registrations).
namespace close_code {
inline constexpr uint16_t normal = 1000;
inline constexpr uint16_t going_away = 1001;
inline constexpr uint16_t protocol_error = 1002;
inline constexpr uint16_t unsupported_data = 1003;
inline constexpr uint16_t no_status = 1005;  // never on the wire
inline constexpr uint16_t abnormal = 1006;   // never on the wire
inline constexpr uint16_t invalid_payload = 1007;
inline constexpr uint16_t policy_violation = 1008;
inline constexpr uint16_t message_too_big = 1009;
inline constexpr uint16_t mandatory_extension = 1010;
inline constexpr uint16_t internal_error = 1011;
inline constexpr uint16_t service_restart = 1012;
inline constexpr uint16_t try_again_later = 1013;
}  // namespace close_code

}  // namespace tether
