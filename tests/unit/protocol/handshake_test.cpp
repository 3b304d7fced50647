// RFC 6455 §4 opening handshake, both roles, plus §9.1 extension negotiation. Requests and
// responses go through the real parser, fed in every chunk size, before being checked.
#include "protocol/handshake.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <tuple>

#include "protocol/http.hpp"

namespace {

using namespace tether::protocol;
using HsKind = ServerHandshakeResult::Kind;

constexpr const char* kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
// The value printed in RFC 6455 §1.3 (base64 of SHA-1("dGhl...jZQ==" + GUID)).
constexpr const char* kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Parses a head (a body may follow it), splitting the input every possible way; all splits
// must agree on the head and on where it ends.
HttpHead parse(HttpHeadParser::Kind kind, std::string_view text) {
  HttpHead first;
  std::size_t first_end = 0;
  for (std::size_t chunk = text.size(); chunk >= 1; --chunk) {
    HttpHeadParser parser(kind);
    auto status = HttpHeadParser::Status::need_more;
    std::size_t offset = 0, used = 0;
    while (offset < text.size() && status == HttpHeadParser::Status::need_more) {
      std::size_t n = std::min(chunk, text.size() - offset);
      status = parser.feed(as_bytes(text.substr(offset, n)), used);
      offset += used;
    }
    EXPECT_EQ(status, HttpHeadParser::Status::done) << "chunk " << chunk << ": " << text;
    if (chunk == text.size()) {
      first = parser.head();
      first_end = offset;
    }
    EXPECT_EQ(offset, first_end) << "chunk " << chunk;
    EXPECT_EQ(parser.head().headers, first.headers) << "chunk " << chunk;
    if (::testing::Test::HasFailure()) break;
  }
  return first;
}

HttpHead parse_request(std::string_view text) { return parse(HttpHeadParser::Kind::request, text); }
HttpHead parse_response(std::string_view text) {
  return parse(HttpHeadParser::Kind::response, text);
}

// The §1.3 example request with `extra` header lines appended.
std::string rfc_request(std::string_view extra = {}) {
  return "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: " +
         std::string(kRfcKey) + "\r\nSec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
}

ServerHandshakeResult serve(std::string_view request, const ServerHandshakeConfig& config = {}) {
  return server_handshake(parse_request(request), config);
}

// Every error answer must be a well-formed, closing, plain-text HTTP response.
void expect_error_response(const ServerHandshakeResult& r, int status) {
  EXPECT_EQ(r.kind, HsKind::reject);
  EXPECT_EQ(r.status, status);
  EXPECT_FALSE(r.error.empty());
  HttpHead head = parse_response(r.response);
  EXPECT_EQ(head.status, status);
  EXPECT_EQ(head.get("Connection"), "close");
  EXPECT_EQ(head.get("Content-Type"), "text/plain; charset=utf-8");
  auto blank = r.response.find("\r\n\r\n");
  ASSERT_NE(blank, std::string::npos);
  EXPECT_EQ(head.get("Content-Length"), std::to_string(r.response.size() - blank - 4));
  EXPECT_NE(r.response.find(r.error, blank), std::string::npos) << "body explains the reason";
}

TEST(Rfc6455_1_3, ExampleAcceptValue) { EXPECT_EQ(compute_accept(kRfcKey), kRfcAccept); }

TEST(Rfc6455_1_3, ExampleHandshake) {
  ServerHandshakeConfig config;
  config.subprotocols = {"chat"};
  auto r = serve(
      rfc_request("Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"),
      config);
  ASSERT_EQ(r.kind, HsKind::accept);
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.subprotocol, "chat");
  EXPECT_EQ(r.response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: chat\r\n\r\n");
}

TEST(Rfc4648_10, Base64TestVectors) {
  const std::string_view plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const std::string_view encoded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (std::size_t i = 0; i < std::size(plain); ++i) {
    EXPECT_EQ(base64_encode(as_bytes(plain[i])), encoded[i]);
    EXPECT_EQ(base64_decoded_size(encoded[i]), static_cast<int>(plain[i].size())) << encoded[i];
  }
  for (std::string_view bad : {"Zg=", "Zg=a", "Z===", "====", "Zm9v!A==", "Zg==Zg==", "Zm 9v"})
    EXPECT_EQ(base64_decoded_size(bad), -1) << bad;
}

TEST(Rfc6455_4_1, ClientKeyIsBase64Of16Bytes) {
  std::array<uint8_t, 16> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  std::string key = make_client_key(bytes);
  EXPECT_EQ(key, "AAECAwQFBgcICQoLDA0ODw==");
  EXPECT_EQ(base64_decoded_size(key), 16);
}

// The §1.3 example request with the first `from` replaced by `to`.
std::string edited(std::string_view from, std::string_view to,
                   std::string request = rfc_request()) {
  auto at = request.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) request.replace(at, from.size(), to);
  return request;
}

TEST(Rfc6455_4_2_1, InvalidRequestsAreRejected) {
  const std::string key_line = std::string("Sec-WebSocket-Key: ") + kRfcKey + "\r\n";
  const std::tuple<const char*, std::string, int> cases[] = {
      {"POST", edited("GET ", "POST "), 405},
      {"lowercase get", edited("GET ", "get "), 405},
      {"HTTP/1.0", edited("HTTP/1.1", "HTTP/1.0"), 505},
      {"missing Host", edited("Host: server.example.com\r\n", ""), 400},
      {"two Host lines", rfc_request("Host: b\r\n"), 400},
      {"Upgrade without websocket", edited("Upgrade: websocket", "Upgrade: h2c"), 400},
      {"Upgrade: websocket2", edited("Upgrade: websocket", "Upgrade: websocket2"), 400},
      {"Connection without upgrade", edited("Connection: Upgrade", "Connection: close"), 400},
      {"missing Connection", edited("Connection: Upgrade\r\n", ""), 400},
      {"missing key", edited(key_line, ""), 400},
      {"key of 15 bytes", edited(kRfcKey, "AAECAwQFBgcICQoLDA0O"), 400},
      {"key of 17 bytes", edited(kRfcKey, "AAECAwQFBgcICQoLDA0ODxA="), 400},
      {"key not base64", edited(kRfcKey, "!!!!!!!!!!!!!!!!!!!!!!=="), 400},
      {"empty key", edited(kRfcKey, ""), 400},
      {"two key lines", rfc_request(key_line), 400},
      {"malformed extensions", rfc_request("Sec-WebSocket-Extensions: x; a=\"open\r\n"), 400},
  };
  for (const auto& [name, request, status] : cases) {
    SCOPED_TRACE(name);
    expect_error_response(serve(request), status);
  }
}

TEST(Rfc6455_4_2_1, MissingKeyIs400) {
  auto r = serve(edited(std::string("Sec-WebSocket-Key: ") + kRfcKey + "\r\n", ""));
  expect_error_response(r, 400);
  EXPECT_NE(r.error.find("Sec-WebSocket-Key"), std::string::npos);
}

TEST(Rfc6455_4_2_1, NonGetIs405WithAllowGet) {
  std::string request = rfc_request();
  auto r = serve(request.replace(0, 3, "PUT"));
  expect_error_response(r, 405);
  EXPECT_EQ(parse_response(r.response).get("Allow"), "GET");
}

TEST(Rfc6455_4_2_1, RequestWithoutUpgradeIsPlainHttp) {
  for (std::string_view request : {"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                   "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n",
                                   "POST /form HTTP/1.0\r\n\r\n"}) {
    auto r = serve(request);
    EXPECT_EQ(r.kind, HsKind::not_websocket) << request;
    EXPECT_TRUE(r.response.empty());
  }
}

TEST(Rfc6455_4_2_1, HeaderNamesAndTokensAreCaseInsensitive) {
  auto r = serve(std::string("GET / HTTP/1.1\r\nhOST: a\r\nupgrade: foo, WebSocket\r\n"
                             "CONNECTION: keep-alive, Upgrade\r\nsec-websocket-key: ") +
                 kRfcKey + "\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n");
  ASSERT_EQ(r.kind, HsKind::accept) << r.error;
  EXPECT_NE(r.response.find(std::string("Sec-WebSocket-Accept: ") + kRfcAccept + "\r\n"),
            std::string::npos);
}

TEST(Rfc6455_4_2_1, TokensMaySpanRepeatedHeaderLines) {
  auto r =
      serve(std::string("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nUpgrade: websocket\r\n"
                        "Connection: keep-alive\r\nConnection: upgrade\r\nSec-WebSocket-Key: ") +
            kRfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(r.kind, HsKind::accept) << r.error;
}

TEST(Rfc6455_4_2_2, VersionOtherThan13Gets426WithVersionHeader) {
  for (std::string_view version :
       {"Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version: 12\r\n",
        "Sec-WebSocket-Version: 14\r\n", "Sec-WebSocket-Version:\r\n",
        "Sec-WebSocket-Version: 13, 8\r\n",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n", ""}) {
    SCOPED_TRACE(version);
    auto r = serve(edited("Sec-WebSocket-Version: 13\r\n", version));
    expect_error_response(r, 426);
    EXPECT_EQ(parse_response(r.response).get("Sec-WebSocket-Version"), "13");
  }
}

TEST(Rfc6455_4_2_2, OriginHookRejectsWith403) {
  std::string seen = "unset";
  ServerHandshakeConfig config;
  config.check_origin = [&seen](std::string_view origin) {
    seen = origin;
    return origin == "https://good.example";
  };
  EXPECT_EQ(serve(rfc_request("Origin: https://good.example\r\n"), config).kind, HsKind::accept);
  expect_error_response(serve(rfc_request("Origin: https://evil.example\r\n"), config), 403);
  EXPECT_EQ(seen, "https://evil.example");
  expect_error_response(serve(rfc_request(), config), 403);
  EXPECT_EQ(seen, "") << "an absent Origin is passed as empty";

  config.check_origin = [](std::string_view) -> bool { throw 42; };
  expect_error_response(serve(rfc_request(), config), 403);  // a throwing hook fails closed
}

TEST(Rfc6455_4_2_2, SubprotocolFollowsServerPreferenceOrder) {
  struct Case {
    std::vector<std::string> server;
    const char* offered;  // Sec-WebSocket-Protocol lines, "" for none
    const char* expected;
  };
  const Case cases[] = {
      {{"b", "a"}, "Sec-WebSocket-Protocol: a, b\r\n", "b"},
      {{"a", "b"}, "Sec-WebSocket-Protocol: b, a\r\n", "a"},
      {{"x", "b"}, "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n", "b"},
      {{"a"}, "Sec-WebSocket-Protocol: c, d\r\n", ""},
      {{}, "Sec-WebSocket-Protocol: a\r\n", ""},
      {{"a"}, "", ""},
      {{"Chat"}, "Sec-WebSocket-Protocol: chat\r\n", ""},  // subprotocol names are exact
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.offered);
    ServerHandshakeConfig config;
    config.subprotocols = c.server;
    auto r = serve(rfc_request(c.offered), config);
    ASSERT_EQ(r.kind, HsKind::accept);
    EXPECT_EQ(r.subprotocol, c.expected);
    HttpHead head = parse_response(r.response);
    if (*c.expected) {
      EXPECT_EQ(head.get("Sec-WebSocket-Protocol"), c.expected);
    } else {
      EXPECT_FALSE(head.get("Sec-WebSocket-Protocol").has_value());
    }
  }
}

TEST(Rfc6455_9_1, ExtensionOffersParse) {
  std::vector<ExtensionOffer> offers;
  ASSERT_TRUE(
      parse_extensions({"permessage-deflate; client_max_window_bits, x-foo; a=1; b=\"quoted\"",
                        " , x-bar ;c= \"\\q\""},
                       offers));
  ASSERT_EQ(offers.size(), 3u);
  EXPECT_EQ(offers[0].name, "permessage-deflate");
  using Params = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(offers[0].params, (Params{{"client_max_window_bits", ""}}));
  EXPECT_EQ(offers[1].name, "x-foo");
  EXPECT_EQ(offers[1].params, (Params{{"a", "1"}, {"b", "quoted"}}));
  EXPECT_EQ(offers[2].name, "x-bar");
  EXPECT_EQ(offers[2].params, (Params{{"c", "q"}}));  // quoted-pair unescaped

  std::vector<ExtensionOffer> none;
  EXPECT_TRUE(parse_extensions({}, none));
  EXPECT_TRUE(none.empty());
}

TEST(Rfc6455_9_1, MalformedExtensionsAreRejected) {
  for (std::string_view bad :
       {"; a", "x;", "x; =1", "x; a=", "x; a=\"open", "x; a=\"\"", "x; a=\"two words\"", "x y",
        "x; a=b c", "x; a=1 ; ; b", "x@y", "x; a=\"q\"z", "x; a=\"ends\\"}) {
    std::vector<ExtensionOffer> out;
    EXPECT_FALSE(parse_extensions({bad}, out)) << bad;
  }
}

// A negotiator that accepts an offer unless it carries a "decline" parameter.
class FakeExtension : public ExtensionNegotiator {
 public:
  explicit FakeExtension(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  bool accept_offer(const ExtensionOffer& offer, std::string& response) override {
    ++calls;
    for (const auto& [key, value] : offer.params)
      if (key == "decline") return false;
    response = name_ + "; n=" + std::to_string(calls);
    return true;
  }
  int calls = 0;

 private:
  std::string name_;
};

TEST(Rfc6455_9_1, FirstAcceptedOfferPerExtensionWins) {
  FakeExtension deflate("permessage-deflate"), foo("x-foo");
  ServerHandshakeConfig config;
  config.extensions = {&deflate, &foo};
  auto r = serve(rfc_request("Sec-WebSocket-Extensions: permessage-deflate; decline, x-unknown\r\n"
                             "sec-websocket-extensions: permessage-deflate, x-foo, "
                             "permessage-deflate; client_max_window_bits\r\n"),
                 config);
  ASSERT_EQ(r.kind, HsKind::accept) << r.error;
  EXPECT_EQ(deflate.calls, 2) << "declined once, accepted once, never asked again";
  EXPECT_EQ(foo.calls, 1);
  EXPECT_EQ(r.accepted_extensions,
            (std::vector<std::string>{"permessage-deflate; n=2", "x-foo; n=1"}));
  EXPECT_EQ(parse_response(r.response).get("Sec-WebSocket-Extensions"),
            "permessage-deflate; n=2, x-foo; n=1");
}

TEST(Rfc6455_9_1, NoAcceptedExtensionMeansNoHeader) {
  FakeExtension deflate("permessage-deflate");
  ServerHandshakeConfig config;
  config.extensions = {&deflate};
  auto r = serve(rfc_request("Sec-WebSocket-Extensions: x-other, permessage-deflate; decline\r\n"),
                 config);
  ASSERT_EQ(r.kind, HsKind::accept);
  EXPECT_TRUE(r.accepted_extensions.empty());
  EXPECT_EQ(r.response.find("Sec-WebSocket-Extensions"), std::string::npos);
}

ClientHandshakeRequest client_request() {
  ClientHandshakeRequest req;
  req.host = "server.example.com";
  req.target = "/chat";
  req.key = kRfcKey;
  req.subprotocols = {"chat", "superchat"};
  req.origin = "http://example.com";
  req.extensions = "permessage-deflate; client_max_window_bits";
  req.extra_headers = {{"Authorization", "Bearer t"}};
  return req;
}

TEST(Rfc6455_4_1, ClientRequestFormat) {
  EXPECT_EQ(make_client_request(client_request()),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
            "Origin: http://example.com\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            "Authorization: Bearer t\r\n\r\n");
  ClientHandshakeRequest minimal;
  minimal.host = "h:8080";
  minimal.target = "/";
  minimal.key = kRfcKey;
  EXPECT_EQ(make_client_request(minimal),
            "GET / HTTP/1.1\r\nHost: h:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

TEST(Rfc6455_4_1, ClientAndServerAgreeEndToEnd) {
  FakeExtension deflate("permessage-deflate");
  ServerHandshakeConfig config;
  config.subprotocols = {"superchat", "chat"};
  config.extensions = {&deflate};
  ClientHandshakeRequest req = client_request();
  auto server = server_handshake(parse_request(make_client_request(req)), config);
  ASSERT_EQ(server.kind, HsKind::accept) << server.error;
  auto client = check_server_response(parse_response(server.response), req);
  ASSERT_TRUE(client.ok) << client.error;
  EXPECT_EQ(client.subprotocol, "superchat");
  ASSERT_EQ(client.extensions.size(), 1u);
  EXPECT_EQ(client.extensions[0].name, "permessage-deflate");
  EXPECT_EQ(client.extensions[0].params,
            (std::vector<std::pair<std::string, std::string>>{{"n", "1"}}));
}

// A 101 response for the §1.3 key with `extra` header lines appended.
std::string response_101(std::string_view extra = {}) {
  return std::string(
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Accept: ") +
         kRfcAccept + "\r\n" + std::string(extra) + "\r\n";
}

TEST(Rfc6455_4_1, ClientMustFailOnAcceptMismatch) {
  std::string response = response_101();
  response.replace(response.find(kRfcAccept), 4, "AAAA");
  auto r = check_server_response(parse_response(response), client_request());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Sec-WebSocket-Accept mismatch");
}

TEST(Rfc6455_4_1, ClientFailuresHavePreciseReasons) {
  const std::string accept = std::string("Sec-WebSocket-Accept: ") + kRfcAccept + "\r\n";
  const std::pair<std::string, std::string> cases[] = {
      {edited("101 Switching Protocols", "403 Forbidden", response_101()),
       "expected HTTP 101, got 403 Forbidden"},
      {"HTTP/1.1 200\r\n\r\n", "expected HTTP 101, got 200"},
      {edited("Upgrade: websocket\r\n", "", response_101()), "missing Upgrade header in response"},
      {edited("websocket", "h2c", response_101()), "Upgrade header is not websocket: h2c"},
      {edited("Connection: Upgrade\r\n", "", response_101()),
       "missing Connection header in response"},
      {edited("Connection: Upgrade", "Connection: close", response_101()),
       "Connection header does not contain Upgrade: close"},
      {edited(accept, "", response_101()), "missing Sec-WebSocket-Accept header"},
      {response_101(accept), "more than one Sec-WebSocket-Accept header"},
      {response_101("Sec-WebSocket-Protocol: other\r\n"),
       "server selected subprotocol not offered: other"},
      {response_101("Sec-WebSocket-Protocol: chat, superchat\r\n"),
       "server selected more than one subprotocol"},
      {response_101("Sec-WebSocket-Extensions: x-foo\r\n"),
       "server accepted extension not offered: x-foo"},
      {response_101("Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n"),
       "server accepted extension more than once: permessage-deflate"},
      {response_101("Sec-WebSocket-Extensions: permessage-deflate; =\r\n"),
       "malformed Sec-WebSocket-Extensions header in response"},
  };
  for (const auto& [response, error] : cases) {
    SCOPED_TRACE(response);
    auto r = check_server_response(parse_response(response), client_request());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, error);
    EXPECT_TRUE(r.subprotocol.empty());
    EXPECT_TRUE(r.extensions.empty());
  }
}

TEST(Rfc6455_4_1, ClientAcceptsCaseInsensitiveTokensAndNoSubprotocol) {
  auto r = check_server_response(
      parse_response(std::string("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\n"
                                 "connection: keep-alive, UPGRADE\r\nsec-websocket-accept: ") +
                     kRfcAccept + "\r\n\r\n"),
      client_request());
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.subprotocol, "");
  EXPECT_TRUE(r.extensions.empty());
}

TEST(HandshakeHttpResponse, FormatAndReasons) {
  EXPECT_EQ(
      http_response(404, "X-A: 1\r\n", "nope"),
      "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\nX-A: 1\r\n\r\nnope");
  EXPECT_EQ(http_reason(426), "Upgrade Required");
  EXPECT_EQ(http_reason(431), "Request Header Fields Too Large");
  EXPECT_EQ(http_reason(299), "Unknown");
}

}  // namespace
