#include "tether/close_info.hpp"

namespace tether {

std::string_view to_string(Cause cause) {
  switch (cause) {
    case Cause::remote_close:
      return "remote_close";
    case Cause::local_close:
      return "local_close";
    case Cause::heartbeat_timeout:
      return "heartbeat_timeout";
    case Cause::idle_timeout:
      return "idle_timeout";
    case Cause::handshake_timeout:
      return "handshake_timeout";
    case Cause::network_error:
      return "network_error";
    case Cause::protocol_error:
      return "protocol_error";
    case Cause::connect_failed:
      return "connect_failed";
    case Cause::handshake_failed:
      return "handshake_failed";
  }
  return "unknown";
}

}  // namespace tether
