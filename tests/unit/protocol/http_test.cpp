// HTTP/1.1 head parser (RFC 9112) as used by the RFC 6455 §4 handshake. Every input is fed in
// every chunk size from 1 byte to its whole length, and each split must give the same answer.
#include "protocol/http.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace {

using tether::protocol::HttpHead;
using tether::protocol::HttpHeadParser;
using tether::protocol::HttpLimits;
using Kind = HttpHeadParser::Kind;
using Status = HttpHeadParser::Status;
using namespace std::string_literals;

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Outcome {
  Status status = Status::need_more;
  int error_status = 0;
  std::size_t consumed = 0;  // bytes of the input the parser took (the head length on done)
  std::size_t fed = 0;       // bytes offered by the time the parser settled
  HttpHead head;
};

Outcome feed_in_chunks(Kind kind, std::string_view input, std::size_t chunk, HttpLimits limits) {
  HttpHeadParser parser(kind, limits);
  Outcome out;
  std::size_t offset = 0;
  while (offset < input.size()) {
    std::size_t n = std::min(chunk, input.size() - offset);
    std::size_t used = 0;
    out.status = parser.feed(as_bytes(input.substr(offset, n)), used);
    out.fed = offset + n;
    if (out.status != Status::need_more) {
      out.consumed = offset + used;
      break;
    }
    EXPECT_EQ(used, n) << "need_more must consume everything";
    offset += n;
    out.consumed = offset;
  }
  out.error_status = parser.error_status();
  out.head = parser.head();
  return out;
}

void expect_same_head(const HttpHead& a, const HttpHead& b) {
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.version_major, b.version_major);
  EXPECT_EQ(a.version_minor, b.version_minor);
  EXPECT_EQ(a.headers, b.headers);
}

// Parses `input` split into every chunk size and checks all splits agree; returns the result.
Outcome parse_every_split(Kind kind, std::string_view input, HttpLimits limits = {}) {
  Outcome whole = feed_in_chunks(kind, input, std::max<std::size_t>(input.size(), 1), limits);
  for (std::size_t chunk = 1; chunk < input.size(); ++chunk) {
    Outcome split = feed_in_chunks(kind, input, chunk, limits);
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    EXPECT_EQ(split.status, whole.status);
    EXPECT_EQ(split.error_status, whole.error_status);
    if (whole.status == Status::done) {
      EXPECT_EQ(split.consumed, whole.consumed);
      expect_same_head(split.head, whole.head);
    }
    if (::testing::Test::HasFailure()) break;  // one report per input, not thousands
  }
  return whole;
}

struct GoodCase {
  const char* name;
  Kind kind;
  std::string input;
  std::string method, target;
  int status;
  int minor;
  std::size_t header_count;
};

TEST(HttpHeadParse, WellFormedHeadsInEverySplit) {
  const GoodCase cases[] = {
      {"crlf request", Kind::request,
       "GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n", "GET",
       "/chat?x=1", 0, 1, 2},
      {"bare LF tolerated", Kind::request, "GET / HTTP/1.1\nHost: a\nX: y\n\n", "GET", "/", 0, 1,
       2},
      {"mixed endings", Kind::request, "GET / HTTP/1.1\r\nHost: a\n\r\n", "GET", "/", 0, 1, 1},
      {"leading empty line ignored (RFC 9112 2.2)", Kind::request, "\r\nGET / HTTP/1.1\r\n\r\n",
       "GET", "/", 0, 1, 0},
      {"HTTP/1.0 parses", Kind::request, "GET / HTTP/1.0\r\n\r\n", "GET", "/", 0, 0, 0},
      {"other method", Kind::request, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", 0, 1,
       1},
      {"response", Kind::response,
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "",
       "", 101, 1, 2},
      {"response without reason", Kind::response, "HTTP/1.1 200\r\n\r\n", "", "", 200, 1, 0},
      {"response with empty reason", Kind::response, "HTTP/1.1 404 \r\n\r\n", "", "", 404, 1, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = parse_every_split(c.kind, c.input);
    ASSERT_EQ(o.status, Status::done);
    EXPECT_EQ(o.consumed, c.input.size());
    EXPECT_EQ(o.head.method, c.method);
    EXPECT_EQ(o.head.target, c.target);
    EXPECT_EQ(o.head.status, c.status);
    EXPECT_EQ(o.head.version_major, 1);
    EXPECT_EQ(o.head.version_minor, c.minor);
    EXPECT_EQ(o.head.headers.size(), c.header_count);
  }
}

TEST(HttpHeadParse, ValuesAreTrimmedOfOwsAndNamesKeptAsReceived) {
  Outcome o = parse_every_split(
      Kind::request,
      "GET / HTTP/1.1\r\nX-Pad: \t a b \t \r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\n");
  ASSERT_EQ(o.status, Status::done);
  ASSERT_EQ(o.head.headers.size(), 3u);
  EXPECT_EQ(o.head.headers[0], (std::pair<std::string, std::string>{"X-Pad", "a b"}));
  EXPECT_EQ(o.head.headers[1].second, "");
  EXPECT_EQ(o.head.headers[2].second, "caf\xc3\xa9");  // obs-text is allowed in values
}

TEST(HttpHeadParse, ResponseReasonPhrase) {
  Outcome o = parse_every_split(Kind::response, "HTTP/1.1 403 Forbidden Here\r\n\r\n");
  ASSERT_EQ(o.status, Status::done);
  EXPECT_EQ(o.head.status, 403);
  EXPECT_EQ(o.head.reason, "Forbidden Here");
}

struct BadCase {
  const char* name;
  Kind kind;
  std::string input;
  int expected;
};

TEST(HttpHeadParse, MalformedHeadsGet400Or505InEverySplit) {
  const std::string ok = "GET / HTTP/1.1\r\n";
  const BadCase cases[] = {
      {"start line without spaces", Kind::request, "GET\r\n\r\n", 400},
      {"missing version", Kind::request, "GET /\r\n\r\n", 400},
      {"space in target", Kind::request, "GET /a b HTTP/1.1\r\n\r\n", 400},
      {"double space", Kind::request, "GET  / HTTP/1.1\r\n\r\n", 400},
      {"empty method", Kind::request, " / HTTP/1.1\r\n\r\n", 400},
      {"lowercase protocol name", Kind::request, "GET / http/1.1\r\n\r\n", 400},
      {"version without minor", Kind::request, "GET / HTTP/1\r\n\r\n", 400},
      {"control char in target", Kind::request, std::string("GET /\x01 HTTP/1.1\r\n\r\n"), 400},
      {"NUL in method", Kind::request, "G\0T / HTTP/1.1\r\n\r\n"s, 400},
      {"header without colon", Kind::request, ok + "Host example.com\r\n\r\n", 400},
      {"whitespace before colon", Kind::request, ok + "Host : example.com\r\n\r\n", 400},
      {"tab before colon", Kind::request, ok + "Host\t: example.com\r\n\r\n", 400},
      {"empty header name", Kind::request, ok + ": x\r\n\r\n", 400},
      {"control char in name", Kind::request, ok + "Ho\x01st: a\r\n\r\n", 400},
      {"control char in value", Kind::request, ok + "X: a\x01 b\r\n\r\n", 400},
      {"DEL in value", Kind::request, ok + "X: a\x7f\r\n\r\n", 400},
      {"NUL in value", Kind::request, ok + "X: a\0b\r\n\r\n"s, 400},
      {"bare CR inside a line", Kind::request, ok + "X: a\rb\r\n\r\n", 400},
      {"obsolete line folding (space)", Kind::request, ok + "X: a\r\n  b\r\n\r\n", 400},
      {"obsolete line folding (tab)", Kind::request, ok + "X: a\r\n\tb\r\n\r\n", 400},
      {"folded line that looks like a header", Kind::request, ok + "X: a\r\n Y: b\r\n\r\n", 400},
      {"HTTP/2.0 request", Kind::request, "GET / HTTP/2.0\r\n\r\n", 505},
      {"HTTP/0.9 request", Kind::request, "GET / HTTP/0.9\r\n\r\n", 505},
      {"HTTP/2 preface", Kind::request, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
      {"two-digit status", Kind::response, "HTTP/1.1 20 OK\r\n\r\n", 400},
      {"four-digit status", Kind::response, "HTTP/1.1 1010 x\r\n\r\n", 400},
      {"alphabetic status", Kind::response, "HTTP/1.1 abc OK\r\n\r\n", 400},
      {"status below 100", Kind::response, "HTTP/1.1 099 x\r\n\r\n", 400},
      {"control char in reason", Kind::response, "HTTP/1.1 200 O\x02K\r\n\r\n", 400},
      {"request line sent to a client", Kind::response, "GET / HTTP/1.1\r\n\r\n", 400},
      {"HTTP/2.0 response", Kind::response, "HTTP/2.0 101 x\r\n\r\n", 505},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = parse_every_split(c.kind, c.input);
    EXPECT_EQ(o.status, Status::error);
    EXPECT_EQ(o.error_status, c.expected);
  }
}

TEST(HttpHeadParse, ErrorTextNamesTheProblem) {
  const std::pair<std::string, std::string> cases[] = {
      {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "folding"},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace before colon"},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "bare CR"},
      {"GET / HTTP/1.1\r\nHost\r\n\r\n", "without colon"},
      {"GET / HTTP/2.0\r\n\r\n", "version"},
  };
  for (const auto& [input, text] : cases) {
    HttpHeadParser parser(Kind::request);
    std::size_t used = 0;
    ASSERT_EQ(parser.feed(as_bytes(input), used), Status::error) << input;
    EXPECT_NE(parser.error_text().find(text), std::string::npos) << parser.error_text();
  }
}

TEST(HttpHeadParse, TrailingFrameBytesAreLeftUnconsumed) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string input = head + "\x81\x05hello\x88\x00"s;
  Outcome o = parse_every_split(Kind::response, input);
  ASSERT_EQ(o.status, Status::done);
  EXPECT_EQ(o.consumed, head.size());

  // The same for a request whose head ends with bare LFs.
  const std::string req = "GET / HTTP/1.1\nHost: a\n\n";
  Outcome r = parse_every_split(Kind::request, req + "\x81\x80\x01\x02\x03\x04");
  ASSERT_EQ(r.status, Status::done);
  EXPECT_EQ(r.consumed, req.size());
}

TEST(HttpHeadParse, FeedAfterDoneConsumesNothingAndResetStartsOver) {
  HttpHeadParser parser(Kind::request);
  std::size_t used = 0;
  ASSERT_EQ(parser.feed(as_bytes("GET /a HTTP/1.1\r\n\r\nxyz"), used), Status::done);
  EXPECT_EQ(used, 19u);
  EXPECT_EQ(parser.feed(as_bytes("more"), used), Status::done);
  EXPECT_EQ(used, 0u);
  parser.reset();
  ASSERT_EQ(parser.feed(as_bytes("POST /b HTTP/1.1\r\nA: 1\r\n\r\n"), used), Status::done);
  EXPECT_EQ(parser.head().method, "POST");
  EXPECT_EQ(parser.head().target, "/b");
  EXPECT_EQ(parser.head().headers.size(), 1u);
  parser.reset();
  ASSERT_EQ(parser.feed(as_bytes("GET / HTTP/3.0\r\n"), used), Status::error);
  EXPECT_EQ(parser.feed(as_bytes("\r\n"), used), Status::error);  // errors are sticky
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(parser.error_status(), 505);
  EXPECT_FALSE(parser.error_text().empty());
}

struct LimitCase {
  const char* name;
  std::string input;
  HttpLimits limits;
  Status status;
  int error_status;
  std::size_t settle_at_byte;  // with 1-byte feeds, the byte count at which 431 must show
};

TEST(HttpHeadParse, LimitsGive431AsSoonAsCrossed) {
  const HttpLimits small{32, 256, 3};
  const std::string target32 = "/" + std::string(31, 'a');
  const std::string line32 = "GET " + target32.substr(0, 32 - 13) + " HTTP/1.1";  // 32 bytes
  const std::string headers3 = "A: 1\r\nB: 2\r\nC: 3\r\n";
  std::string head256 = "GET / HTTP/1.1\r\nX: ";
  head256 += std::string(256 - head256.size() - 4, 'v') + "\r\n\r\n";  // exactly 256 bytes
  const LimitCase cases[] = {
      {"start line at the limit", line32 + "\r\n\r\n", small, Status::done, 0, 0},
      {"start line one over", "GET " + target32 + " HTTP/1.1\r\n\r\n", small, Status::error, 431,
       33},
      {"start line without end", "GET /" + std::string(500, 'x'), small, Status::error, 431, 33},
      {"head at the limit", head256, small, Status::done, 0, 0},
      {"head one over", "GET / HTTP/1.1\r\nX: " + std::string(234, 'v') + "\r\n\r\nframe", small,
       Status::error, 431, 257},
      {"endless header value (slowloris)", "GET / HTTP/1.1\r\nX: " + std::string(600, 'v'), small,
       Status::error, 431, 257},
      {"endless empty lines", std::string(400, '\n'), small, Status::error, 431, 257},
      {"max headers", "GET / HTTP/1.1\r\n" + headers3 + "\r\n", small, Status::done, 0, 0},
      {"one header too many", "GET / HTTP/1.1\r\n" + headers3 + "D: 4\r\n\r\n", small,
       Status::error, 431, 16 + 18 + 6},
  };
  ASSERT_EQ(line32.size(), 32u);
  ASSERT_EQ(head256.size(), 256u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = parse_every_split(Kind::request, c.input, c.limits);
    EXPECT_EQ(o.status, c.status);
    EXPECT_EQ(o.error_status, c.error_status);
    if (c.status == Status::error) {
      Outcome bytewise = feed_in_chunks(Kind::request, c.input, 1, c.limits);
      EXPECT_EQ(bytewise.fed, c.settle_at_byte);
      EXPECT_LT(bytewise.fed, c.input.size());
    }
  }
}

TEST(HttpHeadParse, DefaultLimitsRejectOversizedInputEarly) {
  // Just over the 16 KiB default head: every split reports 431, and bytewise feeding stops at
  // the first byte past the limit.
  const std::size_t max = HttpLimits{}.max_head_bytes;
  const std::string over = "GET / HTTP/1.1\r\nCookie: " + std::string(max, 'c') + "\r\n\r\n";
  Outcome o = parse_every_split(Kind::request, over);
  EXPECT_EQ(o.error_status, 431);
  EXPECT_EQ(feed_in_chunks(Kind::request, over, 1, {}).fed, max + 1);

  // A request target over the 8 KiB start-line default.
  const std::string long_target = "GET /" + std::string(8192, 'p') + " HTTP/1.1\r\n\r\n";
  EXPECT_EQ(parse_every_split(Kind::request, long_target).error_status, 431);
  EXPECT_EQ(feed_in_chunks(Kind::request, long_target, 1, {}).fed, 8193u);

  // 1 MiB of header value never gets buffered beyond the limit, whatever the read size.
  const std::string huge = "GET / HTTP/1.1\r\nCookie: " + std::string(1 << 20, 'c');
  for (std::size_t chunk : {std::size_t{1}, std::size_t{1000}, std::size_t{65536}}) {
    SCOPED_TRACE("chunk size " + std::to_string(chunk));
    Outcome h = feed_in_chunks(Kind::request, huge, chunk, {});
    EXPECT_EQ(h.error_status, 431);
    EXPECT_LE(h.fed, max + chunk);
  }
}

TEST(HttpHeadAccessors, NamesAreCaseInsensitiveAndListsSpanRepeatedLines) {
  Outcome o = parse_every_split(Kind::request,
                                "GET / HTTP/1.1\r\n"
                                "connection: keep-alive, Upgrade\r\n"
                                "CONNECTION: ,, close ,\r\n"
                                "Upgrade: foo, WebSocket\r\n"
                                "X-Q: a=\"x,y\", b=\"p\\\"q,r\", c\r\n\r\n");
  ASSERT_EQ(o.status, Status::done);
  const HttpHead& h = o.head;
  EXPECT_EQ(h.get("Connection"), "keep-alive, Upgrade");  // first line wins
  EXPECT_FALSE(h.get("Missing").has_value());
  EXPECT_EQ(h.list("Connection"),
            (std::vector<std::string_view>{"keep-alive", "Upgrade", "close"}));
  EXPECT_TRUE(h.has_token("connection", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "CLOSE"));
  EXPECT_TRUE(h.has_token("upgrade", "websocket"));
  EXPECT_FALSE(h.has_token("Upgrade", "web"));
  EXPECT_FALSE(h.has_token("Missing", "x"));
  // Commas inside quoted-strings do not split elements.
  EXPECT_EQ(h.list("x-q"), (std::vector<std::string_view>{"a=\"x,y\"", "b=\"p\\\"q,r\"", "c"}));
}

TEST(HttpHeadAccessors, Iequals) {
  EXPECT_TRUE(tether::protocol::iequals("Sec-WebSocket-Key", "sec-websocket-key"));
  EXPECT_TRUE(tether::protocol::iequals("", ""));
  EXPECT_FALSE(tether::protocol::iequals("abc", "abd"));
  EXPECT_FALSE(tether::protocol::iequals("abc", "ab"));
  EXPECT_FALSE(tether::protocol::iequals("\xc3\xa9", "\xc3\x89"));  // ASCII only
}

}  // namespace
