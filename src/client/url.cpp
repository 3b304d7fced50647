#include "client/url.hpp"

#include <charconv>

#include "protocol/http.hpp"

namespace tether::detail {

std::string WsUrl::host_header() const {
  std::string h;
  if (host.find(':') != std::string::npos) {
    h.reserve(host.size() + 8);
    h.push_back('[');
    h.append(host);
    h.push_back(']');
  } else {
    h = host;
  }
  if (port != (secure ? 443 : 80)) h.append(":").append(std::to_string(port));
  return h;
}

std::optional<WsUrl> parse_ws_url(std::string_view url, std::string& error) {
  WsUrl u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    error = "URL has no scheme (expected ws:// or wss://)";
    return std::nullopt;
  }
  std::string_view scheme = url.substr(0, sep);
  if (protocol::iequals(scheme, "ws")) {
    u.secure = false;
  } else if (protocol::iequals(scheme, "wss")) {
    u.secure = true;
  } else {
    error = "unsupported scheme '" + std::string(scheme) + "' (expected ws:// or wss://)";
    return std::nullopt;
  }
  u.port = u.secure ? 443 : 80;
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) {
    error = "fragment identifiers are not allowed in WebSocket URLs";
    return std::nullopt;
  }
  auto path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view target = path_at == std::string_view::npos ? "/" : rest.substr(path_at);
  if (target.front() == '?') u.target.push_back('/');
  u.target.append(target);
  // CR, LF or spaces in the URL would let it inject header lines into the request (RFC 9112 §3.2).
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      error = "URL contains a space or control character";
      return std::nullopt;
    }
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated IPv6 address in URL";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "garbage after IPv6 address in URL";
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) {
    error = "URL has no host";
    return std::nullopt;
  }
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      error = "invalid port '" + std::string(port_text) + "' in URL";
      return std::nullopt;
    }
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

}  // namespace tether::detail
