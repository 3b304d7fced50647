// RFC 6455 §4 opening handshake, both roles, on parsed HTTP heads. No sockets.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/http.hpp"

namespace tether::protocol {

// §4.2.2 step 5.4: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string compute_accept(std::string_view key);
// §4.1: a random 16-byte value, base64-encoded (24 characters).
std::string make_client_key(std::span<const uint8_t, 16> random_bytes);
std::string base64_encode(std::span<const uint8_t> bytes);
// Decoded size, or -1 when not valid base64.
int base64_decoded_size(std::string_view text);

// One element of Sec-WebSocket-Extensions (RFC 6455 §9.1): name and parameters.
struct ExtensionOffer {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;  // value empty when absent
};
// Parses a Sec-WebSocket-Extensions value list; false when malformed.
bool parse_extensions(const std::vector<std::string_view>& values,
                      std::vector<ExtensionOffer>& out);

// An extension the server can accept (extensions::DeflateNegotiator for permessage-deflate).
class ExtensionNegotiator {
 public:
  virtual ~ExtensionNegotiator() = default;
  virtual std::string_view name() const = 0;
  // Server role: given one offer with our name, return true and the response element
  // (e.g. "permessage-deflate; server_no_context_takeover") to accept it, false to decline.
  virtual bool accept_offer(const ExtensionOffer& offer, std::string& response_element) = 0;
};

struct ServerHandshakeConfig {
  // Subprotocols the server speaks, in preference order; the first one the client also offers
  // wins (§4.2.2 step 5.5: the server selects one or none).
  std::vector<std::string> subprotocols;
  // Origin check hook (§10.2). Called with the Origin header ("" when absent). false -> 403.
  std::function<bool(std::string_view origin)> check_origin;
  std::vector<ExtensionNegotiator*> extensions;
  // Non-zero: every valid upgrade is refused with this status (e.g. 503 when the server is at
  // its connection limit) and `reject_headers` ("Name: value\r\n" lines, e.g. Retry-After).
  int reject_status = 0;
  std::string reject_headers;
  std::string reject_reason = "server at its connection limit";  // for logs (on_close reason)
};

struct ServerHandshakeResult {
  enum class Kind {
    accept,         // `response` is the 101 response to write; connection is OPEN after it
    reject,         // `response` is an HTTP error response to write, then close the socket
    not_websocket,  // a plain HTTP request (no Upgrade: websocket): the caller may serve it
  };
  Kind kind = Kind::reject;
  int status = 0;           // 101, or 400/403/405/426/...
  std::string response;     // full HTTP response head (+ small body for errors)
  std::string subprotocol;  // selected one, "" when none
  std::vector<std::string> accepted_extensions;  // response elements that were accepted
  std::string error;                             // why it was rejected, for logs
};

// §4.2.1 validation of a client's opening handshake, §4.2.2 response.
// Rejections: not GET -> 405; not HTTP/1.1+ -> 505 (caught by the parser); missing Host,
// missing/invalid Sec-WebSocket-Key (must decode to 16 bytes) -> 400; Upgrade without a
// "websocket" token or Connection without "upgrade" -> 400 (request that has neither:
// not_websocket); Sec-WebSocket-Version != 13 -> 426 with "Sec-WebSocket-Version: 13";
// origin rejected -> 403.
// `per_connection`: negotiators that belong to this one handshake (they may keep what they
// agreed, e.g. the permessage-deflate parameters), consulted after config.extensions.
ServerHandshakeResult server_handshake(const HttpHead& request, const ServerHandshakeConfig& config,
                                       std::span<ExtensionNegotiator* const> per_connection = {});

// A minimal HTTP response: status line, Content-Length, Connection: close, extra headers
// ("Name: value\r\n" lines), body.
std::string http_response(int status, std::string_view extra_headers, std::string_view body);
std::string_view http_reason(int status);

struct ClientHandshakeRequest {
  std::string host;    // Host header value (with :port when not the default)
  std::string target;  // request target ("/", "/chat?x=1")
  std::string key;     // from make_client_key
  std::vector<std::string> subprotocols;
  std::string origin;      // empty: no Origin header
  std::string extensions;  // Sec-WebSocket-Extensions value, empty: none
  std::vector<std::pair<std::string, std::string>> extra_headers;
};
std::string make_client_request(const ClientHandshakeRequest& req);

struct ClientHandshakeResult {
  bool ok = false;
  std::string subprotocol;
  std::vector<ExtensionOffer> extensions;
  std::string error;  // why the response was refused (§4.1 "the client MUST _Fail the WebSocket
                      // Connection_")
};
// §4.1 validation of the server's response: status 101, Upgrade: websocket, Connection: upgrade,
// Sec-WebSocket-Accept matching, subprotocol one we offered (or none), extensions we offered.
ClientHandshakeResult check_server_response(const HttpHead& response,
                                            const ClientHandshakeRequest& req);

}  // namespace tether::protocol
