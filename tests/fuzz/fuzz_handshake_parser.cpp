// libFuzzer target: the RFC 6455 §4 opening handshake. HttpHeadParser (request and response
// kinds) fed in input-chosen chunks, then server_handshake() on a complete request and
// check_server_response() on a complete response, parse_extensions() on the extension headers,
// and a server-role Connection fed the raw bytes.
//
// Input layout:
//   byte 0  options (see kOpt*)
//   byte 1  seed for the chunk sizes
//   rest    HTTP bytes (a request and/or a response head, maybe followed by frame bytes)
//
// Invariants (a violation traps, which libFuzzer reports as a crash):
//  - the parse result, the parsed head and where the head ends do not depend on the splits;
//  - a parsed head, written out again, parses to the same head;
//  - a request the server accepts yields a 101 that the client side accepts in turn;
//  - accepted responses only select what was offered; rejections carry a proper status.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/connection.hpp"
#include "protocol/handshake.hpp"
#include "protocol/http.hpp"
#include "protocol/random.hpp"

namespace {

using namespace tether::protocol;

constexpr uint8_t kOptSplitMask = 0x07;
constexpr uint8_t kOptSmallLimits = 0x08;  // tiny HttpLimits: reach the 431 paths quickly
constexpr uint8_t kOptOrigin = 0x10;       // install an origin check hook (403 path)
constexpr uint8_t kOptNoSubprotocols = 0x20;

// Chunk sizes from the options and one seed byte (same scheme as fuzz_frame_parser).
class Splitter {
 public:
  Splitter(uint8_t mode, uint8_t seed) : mode_(mode & kOptSplitMask), seed_(seed) {
    state_ = static_cast<uint16_t>((seed << 8) | 0xA7) | 1u;
  }
  std::size_t next(std::size_t remaining) {
    std::size_t n = remaining;
    switch (mode_) {
      case 0:
        break;
      case 1:
        n = 1;
        break;
      case 2:
        n = 2 + seed_ % 3;  // CR and LF land in different chunks
        break;
      case 3:
        n = 7 + seed_ % 32;
        break;
      case 4:
        n = 1 + seed_;
        break;
      default: {
        xorshift16(state_);
        std::size_t bound = mode_ == 5 ? 4 : mode_ == 6 ? 32 : 1 + seed_;
        n = 1 + state_ % bound;
        break;
      }
    }
    return n < remaining ? n : remaining;
  }

 private:
  uint8_t mode_;
  uint8_t seed_;
  uint16_t state_;
};

HttpLimits limits_for(uint8_t opts) {
  HttpLimits l;
  if (opts & kOptSmallLimits) {
    l.max_start_line = 40;
    l.max_head_bytes = 200;
    l.max_headers = 6;
  }
  return l;
}

struct ParseResult {
  HttpHeadParser::Status status = HttpHeadParser::Status::need_more;
  std::size_t end = 0;  // bytes consumed in total
  HttpHead head;
  int error_status = 0;
};

bool same_head(const HttpHead& a, const HttpHead& b) {
  return a.method == b.method && a.target == b.target && a.status == b.status &&
         a.reason == b.reason && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.headers == b.headers;
}

ParseResult parse(HttpHeadParser& parser, std::span<const uint8_t> in, Splitter splitter) {
  ParseResult r;
  std::size_t pos = 0;
  while (pos < in.size()) {
    std::size_t n = splitter.next(in.size() - pos);
    std::size_t used = 12345;
    r.status = parser.feed(in.subspan(pos, n), used);
    FUZZ_CHECK(used <= n);
    pos += used;
    if (r.status == HttpHeadParser::Status::need_more) {
      FUZZ_CHECK(used == n);  // need_more means everything fed was taken
      continue;
    }
    break;
  }
  r.end = pos;
  if (r.status == HttpHeadParser::Status::done) {
    // Done is sticky and consumes nothing more.
    std::size_t used = 1;
    uint8_t more[] = {'x', '\n'};
    FUZZ_CHECK(parser.feed(more, used) == HttpHeadParser::Status::done && used == 0);
    FUZZ_CHECK(parser.error_status() == 0);
    // The head ends with an LF.
    FUZZ_CHECK(r.end >= 1 && in[r.end - 1] == '\n');
  } else if (r.status == HttpHeadParser::Status::error) {
    int st = parser.error_status();
    FUZZ_CHECK(st == 400 || st == 431 || st == 501 || st == 505);
    FUZZ_CHECK(!parser.error_text().empty());
    std::size_t used = 1;
    uint8_t more[] = {'\n'};
    FUZZ_CHECK(parser.feed(more, used) == HttpHeadParser::Status::error && used == 0);
    r.error_status = st;
  }
  r.head = parser.head();
  return r;
}

// Serializes a parsed head again (CRLF, "Name: value").
std::string serialize(const HttpHead& h, HttpHeadParser::Kind kind) {
  std::string s;
  std::string version =
      "HTTP/" + std::to_string(h.version_major) + "." + std::to_string(h.version_minor);
  if (kind == HttpHeadParser::Kind::request) {
    s = h.method + " " + h.target + " " + version + "\r\n";
  } else {
    s = version + " " + std::to_string(h.status) + " " + h.reason + "\r\n";
  }
  for (const auto& [n, v] : h.headers) s += n + ": " + v + "\r\n";
  s += "\r\n";
  return s;
}

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

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

void check_offers(const std::vector<ExtensionOffer>& offers) {
  for (const auto& o : offers) {
    FUZZ_CHECK(is_token(o.name));
    for (const auto& [n, v] : o.params) {
      FUZZ_CHECK(is_token(n));
      FUZZ_CHECK(v.empty() || is_token(v));
    }
  }
}

// Accepts "x-test" offers whose parameters are all named "ok".
class TestNegotiator final : public ExtensionNegotiator {
 public:
  std::string_view name() const override { return "x-test"; }
  bool accept_offer(const ExtensionOffer& offer, std::string& element) override {
    for (const auto& [n, v] : offer.params)
      if (n != "ok") return false;
    element = "x-test";
    return true;
  }
};

// parse_extensions on every extension header, raw and list-split; both must agree.
void check_extension_headers(const HttpHead& head) {
  std::vector<std::string_view> raw;
  for (const auto& [n, v] : head.headers)
    if (iequals(n, "Sec-WebSocket-Extensions")) raw.emplace_back(v);
  std::vector<ExtensionOffer> from_raw;
  bool raw_ok = parse_extensions(raw, from_raw);
  if (raw_ok) check_offers(from_raw);
  std::vector<ExtensionOffer> from_list;
  bool list_ok = parse_extensions(head.list("Sec-WebSocket-Extensions"), from_list);
  if (list_ok) check_offers(from_list);
  if (raw_ok && list_ok) {
    FUZZ_CHECK(from_raw.size() == from_list.size());
    for (std::size_t i = 0; i < from_raw.size(); ++i) {
      FUZZ_CHECK(from_raw[i].name == from_list[i].name);
      FUZZ_CHECK(from_raw[i].params == from_list[i].params);
    }
  }
}

void check_request(const HttpHead& req, uint8_t opts) {
  TestNegotiator negotiator;
  ServerHandshakeConfig cfg;
  if (!(opts & kOptNoSubprotocols)) cfg.subprotocols = {"chat", "superchat"};
  if (opts & kOptOrigin)
    cfg.check_origin = [](std::string_view origin) { return origin != "http://evil.example"; };
  cfg.extensions = {&negotiator};
  ServerHandshakeResult res = server_handshake(req, cfg);

  using Kind = ServerHandshakeResult::Kind;
  if (res.kind == Kind::not_websocket) {
    FUZZ_CHECK(!req.get("Upgrade"));
    return;
  }
  if (res.kind == Kind::reject) {
    FUZZ_CHECK(res.status == 400 || res.status == 403 || res.status == 405 || res.status == 426 ||
               res.status == 505);
    FUZZ_CHECK(!res.error.empty());
    std::string prefix = "HTTP/1.1 " + std::to_string(res.status) + " ";
    FUZZ_CHECK(res.response.compare(0, prefix.size(), prefix) == 0);
    // The error response itself must be a well-formed response head.
    HttpHeadParser p(HttpHeadParser::Kind::response);
    std::size_t used = 0;
    FUZZ_CHECK(p.feed(bytes(res.response), used) == HttpHeadParser::Status::done);
    FUZZ_CHECK(p.head().status == res.status);
    return;
  }

  FUZZ_CHECK(res.kind == Kind::accept && res.status == 101);
  FUZZ_CHECK(req.method == "GET");
  auto key = req.get("Sec-WebSocket-Key");
  FUZZ_CHECK(key && base64_decoded_size(*key) == 16);
  if (!res.subprotocol.empty())
    FUZZ_CHECK(req.has_token("Sec-WebSocket-Protocol", res.subprotocol));

  // Round trip: the client that sent this request must accept our 101.
  HttpHeadParser p(HttpHeadParser::Kind::response);
  std::size_t used = 0;
  FUZZ_CHECK(p.feed(bytes(res.response), used) == HttpHeadParser::Status::done);
  FUZZ_CHECK(used == res.response.size());
  ClientHandshakeRequest creq;
  creq.key = std::string(*key);
  for (auto proto : req.list("Sec-WebSocket-Protocol")) creq.subprotocols.emplace_back(proto);
  for (const auto& [n, v] : req.headers) {
    if (!iequals(n, "Sec-WebSocket-Extensions")) continue;
    if (!creq.extensions.empty()) creq.extensions += ", ";
    creq.extensions += v;
  }
  ClientHandshakeResult cres = check_server_response(p.head(), creq);
  if (!cres.ok) std::fprintf(stderr, "client refused our 101: %s\n", cres.error.c_str());
  FUZZ_CHECK(cres.ok);
  FUZZ_CHECK(cres.subprotocol == res.subprotocol);
}

void check_response(const HttpHead& resp, uint8_t opts) {
  ClientHandshakeRequest req;
  req.host = "server.example.com";
  req.target = "/chat";
  req.key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3: accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
  if (!(opts & kOptNoSubprotocols)) req.subprotocols = {"chat", "superchat"};
  req.extensions = "permessage-deflate; client_max_window_bits, x-test";
  ClientHandshakeResult res = check_server_response(resp, req);
  if (!res.ok) {
    FUZZ_CHECK(!res.error.empty());
    return;
  }
  FUZZ_CHECK(resp.status == 101);
  FUZZ_CHECK(resp.get("Sec-WebSocket-Accept") == std::string_view("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  bool offered = res.subprotocol.empty();
  for (const auto& p : req.subprotocols) offered = offered || p == res.subprotocol;
  FUZZ_CHECK(offered);
  for (const auto& e : res.extensions)
    FUZZ_CHECK(iequals(e.name, "permessage-deflate") || iequals(e.name, "x-test"));
  check_offers(res.extensions);
}

void run_kind(HttpHeadParser::Kind kind, std::span<const uint8_t> in, uint8_t opts, uint8_t seed) {
  const HttpLimits limits = limits_for(opts);
  HttpHeadParser whole_parser(kind, limits);
  ParseResult whole = parse(whole_parser, in, Splitter(0, seed));

  if ((opts & kOptSplitMask) != 0) {
    HttpHeadParser split_parser(kind, limits);
    ParseResult split = parse(split_parser, in, Splitter(opts, seed));
    FUZZ_CHECK(split.status == whole.status);
    FUZZ_CHECK(split.error_status == whole.error_status);
    if (whole.status == HttpHeadParser::Status::done) {
      FUZZ_CHECK(split.end == whole.end);
      FUZZ_CHECK(same_head(split.head, whole.head));
    }
  }
  // reset() makes a parser as good as new.
  whole_parser.reset();
  ParseResult again = parse(whole_parser, in, Splitter(0, seed));
  FUZZ_CHECK(again.status == whole.status && again.end == whole.end);

  if (whole.status != HttpHeadParser::Status::done) return;
  const HttpHead& head = whole.head;
  FUZZ_CHECK(head.version_major == 1 && head.version_minor >= 0 && head.version_minor <= 9);

  // Writing the head out again and parsing it gives the same head (default limits: the
  // canonical form can be longer than the input, e.g. "Name:v" -> "Name: v").
  std::string text = serialize(head, kind);
  HttpLimits roomy;
  roomy.max_head_bytes = std::max(roomy.max_head_bytes, text.size());
  HttpHeadParser re(kind, roomy);
  std::size_t used = 0;
  FUZZ_CHECK(re.feed(bytes(text), used) == HttpHeadParser::Status::done);
  FUZZ_CHECK(used == text.size());
  FUZZ_CHECK(same_head(re.head(), head));

  check_extension_headers(head);
  if (kind == HttpHeadParser::Kind::request)
    check_request(head, opts);
  else
    check_response(head, opts);
}

// A server-role Connection fed the same bytes: every outcome ends in exactly one state.
class CountingHandler final : public Handler {
 public:
  void on_open() override { ++opens; }
  void on_message(tether::codec::Opcode, std::span<const uint8_t>) override { ++messages; }
  void on_close(const tether::CloseInfo&) override { ++closes; }
  int opens = 0, messages = 0, closes = 0;
};

void run_connection(std::span<const uint8_t> in, uint8_t opts, uint8_t seed) {
  ServerHandshakeConfig server_cfg;
  server_cfg.subprotocols = {"chat"};
  ConnectionConfig cfg;
  cfg.role = Role::server;
  cfg.server = &server_cfg;
  cfg.http = limits_for(opts);
  CountingHandler handler;
  CountingRandom rng(seed);
  cfg.rng = &rng;
  Connection conn(cfg, handler);
  std::vector<uint8_t> buf(in.begin(), in.end());
  Splitter splitter(opts, seed);
  std::size_t pos = 0;
  while (pos < buf.size()) {
    std::size_t n = splitter.next(buf.size() - pos);
    conn.receive(std::span<uint8_t>(buf.data() + pos, n));
    pos += n;
  }
  FUZZ_CHECK(handler.opens <= 1 && handler.closes <= 1);
  if (handler.opens == 0) FUZZ_CHECK(handler.messages == 0);
  if (conn.state() == State::connecting) FUZZ_CHECK(conn.out().empty());
  if (conn.state() != State::connecting && !conn.out().empty()) {
    std::string_view out(reinterpret_cast<const char*>(conn.out().data()), conn.out().size());
    FUZZ_CHECK(out.substr(0, 9) == "HTTP/1.1 ");
  }
  conn.receive_eof();
  // A WebSocket that was opened or refused ends with one close event; a plain HTTP request
  // served by on_http_request has none.
  FUZZ_CHECK(handler.closes <= 1);
  if (handler.opens == 1) FUZZ_CHECK(handler.closes == 1);
}

// A client-role Connection (it sent the RFC 6455 §1.3 key) fed the same bytes as the response.
void run_client_connection(std::span<const uint8_t> in, uint8_t opts, uint8_t seed) {
  ConnectionConfig cfg;
  cfg.role = Role::client;
  cfg.http = limits_for(opts);
  CountingHandler handler;
  CountingRandom rng(seed);
  cfg.rng = &rng;
  Connection conn(cfg, handler);
  ClientHandshakeRequest req;
  req.host = "server.example.com";
  req.target = "/chat";
  req.key = "dGhlIHNhbXBsZSBub25jZQ==";
  req.subprotocols = {"chat", "superchat"};
  req.extensions = "permessage-deflate; client_max_window_bits, x-test";
  conn.start_client(std::move(req));
  const std::size_t request_size = conn.out().size();
  FUZZ_CHECK(request_size > 0 && conn.state() == State::connecting);
  std::vector<uint8_t> buf(in.begin(), in.end());
  Splitter splitter(opts, seed);
  std::size_t pos = 0;
  while (pos < buf.size()) {
    std::size_t n = splitter.next(buf.size() - pos);
    conn.receive(std::span<uint8_t>(buf.data() + pos, n));
    pos += n;
  }
  FUZZ_CHECK(handler.opens <= 1 && handler.closes <= 1);
  if (handler.opens == 0) {
    FUZZ_CHECK(handler.messages == 0);
    FUZZ_CHECK(conn.out().size() == request_size);  // nothing is sent before the 101
  } else {
    const std::string_view proto = conn.subprotocol();
    FUZZ_CHECK(proto.empty() || proto == "chat" || proto == "superchat");
  }
  if (handler.closes == 1) FUZZ_CHECK(conn.state() == State::closed);
  conn.receive_eof();
  FUZZ_CHECK(handler.closes == 1);  // a client always ends with exactly one close event
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const uint8_t opts = data[0];
  const uint8_t seed = data[1];
  std::span<const uint8_t> in(data + 2, size - 2);

  run_kind(HttpHeadParser::Kind::request, in, opts, seed);
  run_kind(HttpHeadParser::Kind::response, in, opts, seed);
  run_connection(in, opts, seed);
  run_client_connection(in, opts, seed);

  // parse_extensions on the raw input, one value per line.
  std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  std::vector<std::string_view> values;
  while (!text.empty() && values.size() < 32) {
    auto nl = text.find('\n');
    values.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  std::vector<ExtensionOffer> offers;
  if (parse_extensions(values, offers)) check_offers(offers);
  return 0;
}
