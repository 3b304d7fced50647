// ws:// and wss:// URLs (RFC 6455 §3).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::detail {

struct WsUrl {
  bool secure = false;
  std::string host;  // without brackets for IPv6
  uint16_t port = 80;
  std::string target;  // path + query, "/" when empty (§3: fragment identifiers are not allowed)
  std::string host_header() const;  // host[:port] as the Host header wants it
};

// nullopt with `error` set when the URL is not a valid ws/wss URL.
std::optional<WsUrl> parse_ws_url(std::string_view url, std::string& error);

}  // namespace tether::detail
