// RFC 6455 §4 opening handshake on parsed heads: §4.2.1/§4.2.2 for the server, §4.1 for the
// client, §9.1 for Sec-WebSocket-Extensions. Pure functions: no sockets, clocks or exceptions.
#include "protocol/handshake.hpp"

#include <openssl/sha.h>

#include <cstring>
#include <utility>

namespace tether::protocol {
namespace {

// §1.3 / §4.2.2 step 5.4: the GUID concatenated to the key before hashing.
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// RFC 9110 §5.6.2 tchar; extension names and parameters are tokens (§9.1).
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

std::size_t count_headers(const HttpHead& head, std::string_view name) {
  std::size_t n = 0;
  for (const auto& [key, value] : head.headers)
    if (iequals(key, name)) ++n;
  return n;
}

// Raw values of every line of a header, for parsers that do their own (quote-aware) splitting.
std::vector<std::string_view> raw_values(const HttpHead& head, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [key, value] : head.headers)
    if (iequals(key, name)) out.emplace_back(value);
  return out;
}

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

// An error answer per §4.2.2 ("an appropriate HTTP error code"): a short plain-text body saying
// why, so a human poking the port with curl sees the reason.
ServerHandshakeResult reject(int status, std::string why, std::string_view extra_headers = {}) {
  ServerHandshakeResult r;
  r.kind = ServerHandshakeResult::Kind::reject;
  r.status = status;
  std::string headers = cat({"Content-Type: text/plain; charset=utf-8\r\n", extra_headers});
  r.response = http_response(status, headers, cat({why, "\n"}));
  r.error = std::move(why);
  return r;
}

// Parses one header value holding a §9.1 extension-list:
//   extension = extension-token *( ";" extension-param )
//   extension-param = token [ "=" (token | quoted-string) ]
bool parse_extension_value(std::string_view s, std::vector<ExtensionOffer>& out) {
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  auto token = [&] {
    std::size_t begin = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    return s.substr(begin, i - begin);
  };
  for (;;) {
    skip_ows();
    if (i == s.size()) return true;
    if (s[i] == ',') {  // RFC 9110 §5.6.1: empty list elements are skipped
      ++i;
      continue;
    }
    ExtensionOffer offer;
    offer.name.assign(token());
    if (offer.name.empty()) return false;
    skip_ows();
    while (i < s.size() && s[i] == ';') {
      ++i;
      skip_ows();
      std::string name(token());
      if (name.empty()) return false;
      std::string value;
      skip_ows();
      if (i < s.size() && s[i] == '=') {
        ++i;
        skip_ows();
        if (i < s.size() && s[i] == '"') {
          ++i;
          bool closed = false;
          while (i < s.size()) {
            char c = s[i++];
            if (c == '"') {
              closed = true;
              break;
            }
            if (c == '\\') {
              if (i == s.size()) return false;
              c = s[i++];
            }
            value.push_back(c);
          }
          // §9.1: after unescaping, a quoted value must still be a token.
          if (!closed || !is_token(value)) return false;
        } else {
          value.assign(token());
          if (value.empty()) return false;
        }
        skip_ows();
      }
      offer.params.emplace_back(std::move(name), std::move(value));
    }
    out.push_back(std::move(offer));
    if (i == s.size()) return true;
    if (s[i] != ',') return false;
    ++i;
  }
}

}  // namespace

std::string base64_encode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

int base64_decoded_size(std::string_view text) {
  // Padded RFC 4648 §4 base64 only: §4.1 describes the key as base64 of 16 bytes, which is
  // always 24 characters ending in "==".
  if (text.size() % 4 != 0) return -1;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  for (std::size_t i = 0; i < text.size() - pad; ++i)
    if (base64_value(text[i]) < 0) return -1;
  return static_cast<int>(text.size() / 4 * 3 - pad);
}

std::string compute_accept(std::string_view key) {
  std::string input = cat({key, kWebSocketGuid});
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64_encode(std::span<const uint8_t>(digest, sizeof digest));
}

std::string make_client_key(std::span<const uint8_t, 16> random_bytes) {
  return base64_encode(random_bytes);
}

bool parse_extensions(const std::vector<std::string_view>& values,
                      std::vector<ExtensionOffer>& out) {
  // Each value may itself be a comma list (raw header lines) or a single element (from
  // HttpHead::list); both parse the same way.
  for (auto value : values)
    if (!parse_extension_value(value, out)) return false;
  return true;
}

std::string_view http_reason(int status) {
  // RFC 9110 §15 reason phrases for the statuses a WebSocket server or a small HTTP responder uses.
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {101, "Switching Protocols"},
      {200, "OK"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"}};
  for (const auto& [code, reason] : kReasons)
    if (code == status) return reason;
  return "Unknown";
}

std::string http_response(int status, std::string_view extra_headers, std::string_view body) {
  return cat({"HTTP/1.1 ", std::to_string(status), " ", http_reason(status),
              "\r\nContent-Length: ", std::to_string(body.size()), "\r\nConnection: close\r\n",
              extra_headers, "\r\n", body});
}

ServerHandshakeResult server_handshake(const HttpHead& request, const ServerHandshakeConfig& config,
                                       std::span<ExtensionNegotiator* const> per_connection) {
  // §4.2.1 item 3 makes Upgrade mandatory, so a request without one is ordinary HTTP.
  if (!request.get("Upgrade")) {
    ServerHandshakeResult r;
    r.kind = ServerHandshakeResult::Kind::not_websocket;
    return r;
  }
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
  if (request.method != "GET")
    return reject(405, "WebSocket handshake must use GET", "Allow: GET\r\n");
  if (request.version_major == 1 && request.version_minor < 1)
    return reject(505, "WebSocket handshake requires HTTP/1.1");
  // §4.2.1 item 2; RFC 9112 §3.2 also demands 400 for a missing or repeated Host.
  std::size_t hosts = count_headers(request, "Host");
  if (hosts == 0) return reject(400, "missing Host header");
  if (hosts > 1) return reject(400, "more than one Host header");
  // §4.2.1 items 3 and 4.
  if (!request.has_token("Upgrade", "websocket"))
    return reject(400, "Upgrade header does not contain \"websocket\"");
  if (!request.has_token("Connection", "upgrade"))
    return reject(400, "Connection header does not contain \"Upgrade\"");
  // §4.2.1 item 5; §11.3.1 allows the key only once.
  std::size_t keys = count_headers(request, "Sec-WebSocket-Key");
  if (keys == 0) return reject(400, "missing Sec-WebSocket-Key header");
  if (keys > 1) return reject(400, "more than one Sec-WebSocket-Key header");
  std::string_view key = *request.get("Sec-WebSocket-Key");
  if (base64_decoded_size(key) != 16)
    return reject(400, "Sec-WebSocket-Key is not base64 of 16 bytes");
  // §4.2.1 item 6 and §4.4: answer an unknown (or absent) version with 426 and the versions
  // we do speak, so the client can retry.
  auto versions = request.list("Sec-WebSocket-Version");
  if (versions.size() != 1 || versions[0] != "13")
    return reject(426, "unsupported Sec-WebSocket-Version (only 13 is supported)",
                  "Sec-WebSocket-Version: 13\r\n");
  if (config.reject_status != 0)
    return reject(config.reject_status, config.reject_reason, config.reject_headers);
  // §4.2.2 step 4 / §10.2: origin policy is the application's. A throwing hook fails closed.
  if (config.check_origin) {
    bool allowed = false;
    try {
      allowed = config.check_origin(request.get("Origin").value_or(std::string_view{}));
    } catch (...) {
      allowed = false;
    }
    if (!allowed) return reject(403, "origin not allowed");
  }
  std::vector<ExtensionOffer> offers;
  if (!parse_extensions(raw_values(request, "Sec-WebSocket-Extensions"), offers))
    return reject(400, "malformed Sec-WebSocket-Extensions header");

  ServerHandshakeResult r;
  r.kind = ServerHandshakeResult::Kind::accept;
  r.status = 101;

  // §4.2.2 step 5.5: pick at most one subprotocol; our preference order decides, and no
  // overlap just means no subprotocol (the client decides whether that is fatal).
  auto offered_protocols = request.list("Sec-WebSocket-Protocol");
  for (const auto& mine : config.subprotocols) {
    bool offered = false;
    for (auto theirs : offered_protocols) offered = offered || theirs == mine;
    if (offered) {
      r.subprotocol = mine;
      break;
    }
  }

  // §9.1: offers are in the client's preference order; several offers may name the same
  // extension with different parameters, and the first one we accept is the one used.
  std::vector<std::string_view> accepted_names;
  for (const auto& offer : offers) {
    bool already = false;
    for (auto name : accepted_names) already = already || iequals(name, offer.name);
    if (already) continue;
    ExtensionNegotiator* negotiator = nullptr;
    for (ExtensionNegotiator* n : config.extensions)
      if (negotiator == nullptr && n != nullptr && iequals(n->name(), offer.name)) negotiator = n;
    for (ExtensionNegotiator* n : per_connection)
      if (negotiator == nullptr && n != nullptr && iequals(n->name(), offer.name)) negotiator = n;
    if (negotiator != nullptr) {
      std::string element;
      bool accepted = false;
      try {
        accepted = negotiator->accept_offer(offer, element);
      } catch (...) {
        accepted = false;  // a failing negotiator declines rather than aborting the handshake
      }
      if (accepted) {
        accepted_names.push_back(offer.name);
        r.accepted_extensions.push_back(std::move(element));
      }
    }
  }

  // §4.2.2 step 5: the 101 response.
  r.response = cat({"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: ", compute_accept(key), "\r\n"});
  if (!r.subprotocol.empty())
    r.response += cat({"Sec-WebSocket-Protocol: ", r.subprotocol, "\r\n"});
  if (!r.accepted_extensions.empty()) {
    r.response += "Sec-WebSocket-Extensions: ";
    for (std::size_t i = 0; i < r.accepted_extensions.size(); ++i)
      r.response += cat({i ? ", " : "", r.accepted_extensions[i]});
    r.response += "\r\n";
  }
  r.response += "\r\n";
  return r;
}

std::string make_client_request(const ClientHandshakeRequest& req) {
  // §4.1 items 1-12 (field order does not matter to the peer; this is the RFC's order).
  std::string out =
      cat({"GET ", req.target, " HTTP/1.1\r\nHost: ", req.host,
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", req.key,
           "\r\nSec-WebSocket-Version: 13\r\n"});
  if (!req.subprotocols.empty()) {
    out += "Sec-WebSocket-Protocol: ";
    for (std::size_t i = 0; i < req.subprotocols.size(); ++i)
      out += cat({i ? ", " : "", req.subprotocols[i]});
    out += "\r\n";
  }
  if (!req.origin.empty()) out += cat({"Origin: ", req.origin, "\r\n"});
  if (!req.extensions.empty()) out += cat({"Sec-WebSocket-Extensions: ", req.extensions, "\r\n"});
  for (const auto& [name, value] : req.extra_headers) out += cat({name, ": ", value, "\r\n"});
  out += "\r\n";
  return out;
}

ClientHandshakeResult check_server_response(const HttpHead& response,
                                            const ClientHandshakeRequest& req) {
  ClientHandshakeResult r;
  auto fail = [&r](std::string why) {
    r = ClientHandshakeResult{};
    r.error = std::move(why);
    return r;
  };
  // §4.1 "If the status code received from the server is not 101, the client handles the
  // response per HTTP procedures" - for us that is a failed connection.
  if (response.status != 101) {
    std::string got = std::to_string(response.status);
    if (!response.reason.empty()) got += cat({" ", response.reason});
    return fail("expected HTTP 101, got " + got);
  }
  // §4.1 items 2-4 of the response checks.
  auto upgrade = response.get("Upgrade");
  if (!upgrade) return fail("missing Upgrade header in response");
  if (!response.has_token("Upgrade", "websocket"))
    return fail(cat({"Upgrade header is not websocket: ", *upgrade}));
  auto connection = response.get("Connection");
  if (!connection) return fail("missing Connection header in response");
  if (!response.has_token("Connection", "upgrade"))
    return fail(cat({"Connection header does not contain Upgrade: ", *connection}));
  std::size_t accepts = count_headers(response, "Sec-WebSocket-Accept");
  if (accepts == 0) return fail("missing Sec-WebSocket-Accept header");
  if (accepts > 1) return fail("more than one Sec-WebSocket-Accept header");
  if (*response.get("Sec-WebSocket-Accept") != compute_accept(req.key))
    return fail("Sec-WebSocket-Accept mismatch");

  // §4.1 item 5 (extensions): anything we did not offer is fatal.
  std::vector<ExtensionOffer> accepted;
  if (!parse_extensions(raw_values(response, "Sec-WebSocket-Extensions"), accepted))
    return fail("malformed Sec-WebSocket-Extensions header in response");
  std::vector<ExtensionOffer> offered;
  if (!req.extensions.empty() && !parse_extensions({req.extensions}, offered)) offered.clear();
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    const std::string& name = accepted[i].name;
    bool was_offered = false;
    for (const auto& o : offered) was_offered = was_offered || iequals(o.name, name);
    if (!was_offered) return fail(cat({"server accepted extension not offered: ", name}));
    // One agreed configuration per extension; two would leave its parameters ambiguous.
    for (std::size_t j = 0; j < i; ++j)
      if (iequals(accepted[j].name, name))
        return fail(cat({"server accepted extension more than once: ", name}));
  }

  // §4.1 item 6 (subprotocol): at most one, and only one we offered.
  auto protocols = response.list("Sec-WebSocket-Protocol");
  if (protocols.size() > 1) return fail("server selected more than one subprotocol");
  if (protocols.size() == 1) {
    bool was_offered = false;
    for (const auto& p : req.subprotocols) was_offered = was_offered || p == protocols[0];
    if (!was_offered) return fail(cat({"server selected subprotocol not offered: ", protocols[0]}));
    r.subprotocol.assign(protocols[0]);
  }
  r.extensions = std::move(accepted);
  r.ok = true;
  return r;
}

}  // namespace tether::protocol
