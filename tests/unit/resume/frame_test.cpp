// tether.resume.v1 frames byte for byte (docs/resume.md §2): encoders, parsers, every malformed
// case, and every truncation of each valid frame.
#include "resume/frame.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "resume/json.hpp"
#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::encode_ack;
using tether::resume::encode_data_header;
using tether::resume::encode_hello;
using tether::resume::encode_welcome;
using tether::resume::Error;
using tether::resume::Frame;
using tether::resume::FrameKind;
using tether::resume::Hello;
using tether::resume::parse_frame;
using tether::resume::parse_hello;
using tether::resume::parse_welcome;
using tether::resume::SessionId;
using tether::resume::Welcome;

const SessionId id = *SessionId::parse("0123456789abcdef0123456789abcdef");

std::string data_frame(uint64_t seq, uint64_t ack, std::string_view payload) {
  uint8_t header[tether::resume::max_data_header];
  std::size_t n = encode_data_header(seq, ack, header);
  return std::string(reinterpret_cast<char*>(header), n) + std::string(payload);
}

// Parses from an exact-size heap copy, so ASan catches any read past the end.
Error parse(MessageType type, std::string_view s, Frame& f, std::string& why) {
  std::vector<uint8_t> copy(s.begin(), s.end());
  Error e = parse_frame(type, copy, f, why);
  f.payload = {};  // points into `copy`
  return e;
}

TEST(DataFrame, HeaderIsMSeqCommaAckSemicolon) {
  EXPECT_EQ(data_frame(1, 0, "hi"), "M1,0;hi");
  EXPECT_EQ(data_frame(1234, 99, ""), "M1234,99;");
  const std::string max = data_frame(UINT64_MAX, UINT64_MAX, "");
  EXPECT_EQ(max, "M18446744073709551615,18446744073709551615;");
  EXPECT_EQ(max.size(), tether::resume::max_data_header);
}

TEST(DataFrame, RoundTripsAnyPayloadInTextAndBinary) {
  const std::string payloads[] = {"", "hello", "M1,0;A5", std::string("\0\x01\xff;", 4),
                                  std::string(70000, 'x')};
  for (MessageType type : {MessageType::text, MessageType::binary}) {
    for (const auto& p : payloads) {
      const std::string frame = data_frame(42, 7, p);
      Frame f;
      std::string why;
      ASSERT_EQ(parse_frame(type, bytes_of(frame), f, why), Error::none) << why;
      EXPECT_EQ(f.kind, FrameKind::data);
      EXPECT_EQ(f.seq, 42u);
      EXPECT_EQ(f.ack, 7u);
      EXPECT_EQ(text_of(f.payload), p);
      // The payload is a view into the frame, not a copy.
      EXPECT_EQ(f.payload.data(), reinterpret_cast<const uint8_t*>(frame.data()) + 6);
    }
  }
}

TEST(AckFrame, IsAFollowedByTheAck) {
  uint8_t buf[tether::resume::max_ack_frame];
  for (uint64_t ack : {uint64_t{0}, uint64_t{64}, UINT64_MAX}) {
    std::size_t n = encode_ack(ack, buf);
    const std::string frame(reinterpret_cast<char*>(buf), n);
    EXPECT_EQ(frame, numbered("A", ack));
    Frame f;
    std::string why;
    ASSERT_EQ(parse_frame(MessageType::text, bytes_of(frame), f, why), Error::none) << why;
    EXPECT_EQ(f.kind, FrameKind::ack);
    EXPECT_EQ(f.ack, ack);
  }
}

TEST(Hello, EncodesByteForByte) {
  EXPECT_EQ(encode_hello(Hello{}), R"(H{"v":1,"session":"","last":0})");
  EXPECT_EQ(encode_hello(Hello{id, 17}),
            R"(H{"v":1,"session":"0123456789abcdef0123456789abcdef","last":17})");
}

TEST(Welcome, EncodesByteForByte) {
  EXPECT_EQ(
      encode_welcome(Welcome{id, true, 5, ""}),
      R"(W{"v":1,"session":"0123456789abcdef0123456789abcdef","resumed":true,"last":5,"reason":""})");
  EXPECT_EQ(
      encode_welcome(Welcome{id, false, 0, "unknown session"}),
      R"(W{"v":1,"session":"0123456789abcdef0123456789abcdef","resumed":false,"last":0,"reason":"unknown session"})");
}

TEST(Welcome, ReasonIsEscapedAsAJsonString) {
  const std::string w = encode_welcome(Welcome{id, false, 0, "a\"b\\c\n\x01 é"});
  EXPECT_NE(w.find(R"("reason":"a\"b\\c\u000a\u0001 é")"), std::string::npos) << w;
  Welcome back;
  std::string why;
  ASSERT_EQ(parse_welcome(MessageType::text, bytes_of(w), back, why), Error::none) << why;
  EXPECT_EQ(back.reason, "a\"b\\c\n\x01 é");
}

TEST(Hello, RoundTrips) {
  for (const Hello& h : {Hello{}, Hello{id, 0}, Hello{id, UINT64_MAX}}) {
    const std::string s = encode_hello(h);
    Hello back;
    std::string why;
    ASSERT_EQ(parse_hello(MessageType::text, bytes_of(s), back, why), Error::none) << why;
    EXPECT_EQ(back.session, h.session);
    EXPECT_EQ(back.last, h.last);
    Frame f;
    ASSERT_EQ(parse_frame(MessageType::text, bytes_of(s), f, why), Error::none);
    EXPECT_EQ(f.kind, FrameKind::hello);
  }
}

TEST(Welcome, RoundTrips) {
  for (const Welcome& w : {Welcome{id, true, 9, ""}, Welcome{id, false, 0, "new session"}}) {
    const std::string s = encode_welcome(w);
    Welcome back;
    std::string why;
    ASSERT_EQ(parse_welcome(MessageType::text, bytes_of(s), back, why), Error::none) << why;
    EXPECT_EQ(back.session, w.session);
    EXPECT_EQ(back.resumed, w.resumed);
    EXPECT_EQ(back.last, w.last);
    EXPECT_EQ(back.reason, w.reason);
  }
}

TEST(Hello, AcceptsAnyJsonLayoutOrderAndUnknownMembers) {
  const std::string s =
      "H { \"last\" : 3 ,\n\t\"x-extra\": true, "
      "\"session\":\"0123456789abcdef0123456789abc\\u0064ef\","
      " \"v\":1 } ";
  Hello h;
  std::string why;
  ASSERT_EQ(parse_hello(MessageType::text, bytes_of(s), h, why), Error::none) << why;
  EXPECT_EQ(h.session, id);
  EXPECT_EQ(h.last, 3u);
}

TEST(Welcome, ReasonIsOptionalAndDecodesUnicodeEscapes) {
  std::string s =
      R"(W{"v":1,"session":"0123456789abcdef0123456789abcdef","resumed":true,"last":0})";
  Welcome w;
  std::string why;
  ASSERT_EQ(parse_welcome(MessageType::text, bytes_of(s), w, why), Error::none) << why;
  EXPECT_EQ(w.reason, "");
  s = R"(W{"v":1,"session":"0123456789abcdef0123456789abcdef","resumed":false,"last":0,)"
      R"("reason":"\u00e9\ud83d\ude00\/\t"})";
  ASSERT_EQ(parse_welcome(MessageType::text, bytes_of(s), w, why), Error::none) << why;
  EXPECT_EQ(w.reason, "\xC3\xA9\xF0\x9F\x98\x80/\t");
}

struct Bad {
  MessageType type;
  std::string frame;
  Error error;
  std::string why;  // exact message
};

const std::string good_id = "\"0123456789abcdef0123456789abcdef\"";

std::vector<Bad> malformed_frames() {
  const auto T = MessageType::text;
  const auto B = MessageType::binary;
  const auto M = Error::malformed_frame;
  return {
      {T, "", M, "empty message"},
      {T, "X1", M, "unknown frame type 'X'"},
      {B, "\x01", M, "unknown frame type byte 1"},
      {T, "m1,0;", M, "unknown frame type 'm'"},
      {T, "M", M, "data frame: sequence number missing"},
      {T, "M,0;", M, "data frame: sequence number missing"},
      {T, "M-1,0;", M, "data frame: sequence number missing"},
      {T, "M+1,0;", M, "data frame: sequence number missing"},
      {T, "M 1,0;", M, "data frame: sequence number missing"},
      {T, "M01,0;", M, "data frame: sequence number has a leading zero"},
      {T, "M18446744073709551616,0;", M, "data frame: sequence number is out of range"},
      {T, "M123456789012345678901,0;", M, "data frame: sequence number is out of range"},
      {T, "M1", M, "data frame: expected ',' after the sequence number"},
      {T, "M1;0;", M, "data frame: expected ',' after the sequence number"},
      {T, "M1.5,0;", M, "data frame: expected ',' after the sequence number"},
      {T, "M1,", M, "data frame: ack missing"},
      {T, "M1,;x", M, "data frame: ack missing"},
      {T, "M1,00;", M, "data frame: ack has a leading zero"},
      {T, "M1,18446744073709551616;", M, "data frame: ack is out of range"},
      {T, "M1,0", M, "data frame: expected ';' after the ack"},
      {T, "M1,0x;", M, "data frame: expected ';' after the ack"},
      {T, "M1,0,;", M, "data frame: expected ';' after the ack"},
      {B, "M0,0;", M, "data frame: sequence number 0 (numbering starts at 1)"},
      {T, "A", M, "ack frame: ack missing"},
      {T, "A01", M, "ack frame: ack has a leading zero"},
      {T, "A1 ", M, "ack frame: trailing bytes after the ack"},
      {T, "A1;", M, "ack frame: trailing bytes after the ack"},
      {T, "A18446744073709551616", M, "ack frame: ack is out of range"},
      {B, "A1", M, "ack frame: must be a text message"},
      {B, R"(H{"v":1,"session":"","last":0})", M, "hello: must be a text message"},
      {B, "W{}", M, "welcome: must be a text message"},
  };
}

TEST(ParseFrame, RejectsEveryMalformedHeaderWithAPreciseMessage) {
  for (const Bad& b : malformed_frames()) {
    Frame f;
    std::string why;
    EXPECT_EQ(parse(b.type, b.frame, f, why), b.error) << b.frame;
    EXPECT_EQ(why, b.why) << b.frame;
  }
}

std::vector<Bad> malformed_hellos() {
  const auto M = Error::malformed_frame;
  const auto T = MessageType::text;
  const std::string s = "\"session\":" + good_id;
  return {
      {T, "H", M, "hello: expected '{' at byte 1"},
      {T, "H[]", M, "hello: expected '{' at byte 1"},
      {T, "H{}", M, "hello: missing \"v\""},
      {T, R"(H{"v":2,"session":"","last":0})", Error::unsupported_version,
       "hello: version 2 (only 1 is supported)"},
      {T, R"(H{"v":0,"session":"","last":0})", Error::unsupported_version,
       "hello: version 0 (only 1 is supported)"},
      {T, R"(H{"v":"1","session":"","last":0})", M, "hello: \"v\" is not a number"},
      {T, R"(H{"v":1,"last":0})", M, "hello: missing \"session\""},
      {T, R"(H{"v":1,"session":""})", M, "hello: missing \"last\""},
      {T, R"(H{"v":1,"session":7,"last":0})", M, "hello: \"session\" is not a string"},
      {T, R"(H{"v":1,"session":"","last":"0"})", M, "hello: \"last\" is not a number"},
      {T, R"(H{"v":1,"session":"","last":true})", M, "hello: \"last\" is not a number"},
      {T, R"(H{"v":1,"session":"0123456789ABCDEF0123456789abcdef","last":0})", M,
       "hello: \"session\" is neither \"\" nor 32 lowercase hex digits"},
      {T, R"(H{"v":1,"session":"0123456789abcdef0123456789abcde","last":0})", M,
       "hello: \"session\" is neither \"\" nor 32 lowercase hex digits"},
      {T, R"(H{"v":1,"session":"","last":5})", M, "hello: \"last\" must be 0 without a session"},
      {T, "H{\"v\":1," + s + ",\"last\":-1}", M, "hello: negative number for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":1.5}", M,
       "hello: non-integer number for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":1e3}", M,
       "hello: non-integer number for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":01}", M, "hello: leading zero in \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":18446744073709551616}", M,
       "hello: number out of range for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":null}", M, "hello: null value for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":[1]}", M, "hello: nested value for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":{}}", M, "hello: nested value for \"last\" at byte 60"},
      {T, "H{\"v\":1," + s + ",\"last\":x}", M, "hello: expected a value for \"last\" at byte 60"},
      {T, "H{\"v\":1,\"v\":1}", M, "hello: duplicate key \"v\" at byte 8"},
      {T, "H{\"v\":1 \"session\":\"\"}", M, "hello: expected ',' or '}' at byte 8"},
      {T, "H{\"v\" 1}", M, "hello: expected ':' after key \"v\" at byte 6"},
      {T, "H{v:1}", M, "hello: expected a string key at byte 2"},
      {T, "H{\"v\":1,}", M, "hello: expected a string key at byte 8"},
      {T, "H{\"v\":1}x", M, "hello: trailing bytes after the object at byte 8"},
      {T, "H{\"v\":1}{}", M, "hello: trailing bytes after the object at byte 8"},
      {T, "H{\"v", M, "hello: unterminated string at byte 4"},
      {T, "H{\"v\\", M, "hello: unterminated escape at byte 5"},
      {T, "H{\"v\\x\":1}", M, "hello: invalid escape at byte 5"},
      {T, "H{\"\\u12\":1}", M, "hello: bad hex digit in \\u escape at byte 7"},
      {T, "H{\"\\u12", M, "hello: truncated \\u escape at byte 5"},
      {T, "H{\"\\udc00\":1}", M, "hello: lone low surrogate at byte 9"},
      {T, "H{\"\\ud800\":1}", M, "hello: high surrogate without a low one at byte 9"},
      {T, "H{\"\\ud800\\u0041\":1}", M, "hello: high surrogate without a low one at byte 15"},
      {T, "H{\"a\tb\":1}", M, "hello: control character in string at byte 4"},
      {T, "H{" + std::string(5000, ' ') + "}", M, "hello: longer than 4096 bytes"},
  };
}

std::vector<Bad> malformed_welcomes() {
  const auto M = Error::malformed_frame;
  const auto T = MessageType::text;
  const std::string s = "W{\"v\":1,\"session\":" + good_id;
  return {
      {T, "W", M, "welcome: expected '{' at byte 1"},
      {T, R"(W{"v":3,"session":"","resumed":true,"last":0})", Error::unsupported_version,
       "welcome: version 3 (only 1 is supported)"},
      {T, R"(W{"v":1,"resumed":true,"last":0})", M, "welcome: missing \"session\""},
      {T, s + ",\"last\":0}", M, "welcome: missing \"resumed\""},
      {T, s + ",\"resumed\":true}", M, "welcome: missing \"last\""},
      {T, s + ",\"resumed\":\"true\",\"last\":0}", M, "welcome: \"resumed\" is not a boolean"},
      {T, s + ",\"resumed\":1,\"last\":0}", M, "welcome: \"resumed\" is not a boolean"},
      {T, s + ",\"resumed\":true,\"last\":0,\"reason\":5}", M,
       "welcome: \"reason\" is not a string"},
      {T, R"(W{"v":1,"session":"","resumed":false,"last":0})", M,
       "welcome: \"session\" is not 32 lowercase hex digits"},
      {T, s + ",\"resumed\":false,\"last\":3}", M, "welcome: \"last\" must be 0 when not resumed"},
      {T, s + ",\"resumed\":tru,\"last\":0}", M,
       "welcome: expected a value for \"resumed\" at byte 63"},
  };
}

TEST(Hello, RejectsEveryMalformedObjectWithAPreciseMessage) {
  for (const Bad& b : malformed_hellos()) {
    std::vector<uint8_t> copy(b.frame.begin(), b.frame.end());
    Hello h;
    std::string why;
    EXPECT_EQ(parse_hello(b.type, copy, h, why), b.error) << b.frame;
    EXPECT_EQ(why, b.why) << b.frame;
  }
}

TEST(Welcome, RejectsEveryMalformedObjectWithAPreciseMessage) {
  for (const Bad& b : malformed_welcomes()) {
    std::vector<uint8_t> copy(b.frame.begin(), b.frame.end());
    Welcome w;
    std::string why;
    EXPECT_EQ(parse_welcome(b.type, copy, w, why), b.error) << b.frame;
    EXPECT_EQ(why, b.why) << b.frame;
  }
}

TEST(Truncation, EveryPrefixOfAHelloOrWelcomeIsRejected) {
  const std::string frames[] = {
      encode_hello(Hello{}),
      encode_hello(Hello{id, 123}),
      encode_welcome(Welcome{id, true, 42, ""}),
      encode_welcome(Welcome{id, false, 0, "replay window exceeded"}),
      R"(H { "v" : 1 , "session" : "\u0030123456789abcdef0123456789abcdef" , "last" : 0 } )",
  };
  for (const auto& full : frames) {
    // The last frame ends in a space: dropping it still leaves a whole object.
    const std::size_t whole = full.back() == ' ' ? full.size() - 1 : full.size();
    for (std::size_t n = 0; n < whole; ++n) {
      std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      std::string why;
      Hello h;
      Welcome w;
      Error e = full[0] == 'H' ? parse_hello(MessageType::text, prefix, h, why)
                               : parse_welcome(MessageType::text, prefix, w, why);
      EXPECT_EQ(e, Error::malformed_frame) << full.substr(0, n);
      EXPECT_FALSE(why.empty());
    }
  }
}

TEST(Truncation, DataPrefixCuttingTheHeaderIsRejectedAndLongerOnesKeepAPayloadPrefix) {
  // A WebSocket message is never truncated in transit; a shorter payload is still a valid
  // frame, since the payload has no length of its own.
  const std::string full = data_frame(1234, 567, "payload");
  const std::size_t header = std::string("M1234,567;").size();
  for (std::size_t n = 0; n <= full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    Frame f;
    std::string why;
    Error e = parse_frame(MessageType::binary, prefix, f, why);
    if (n < header) {
      EXPECT_EQ(e, Error::malformed_frame) << n;
    } else {
      ASSERT_EQ(e, Error::none) << n;
      EXPECT_EQ(f.seq, 1234u);
      EXPECT_EQ(f.ack, 567u);
      EXPECT_EQ(text_of(f.payload), full.substr(header, n - header));
    }
  }
}

TEST(Truncation, AckPrefixesAreRejectedOrAShorterNumber) {
  const std::string full = "A98765";
  for (std::size_t n = 0; n <= full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    Frame f;
    std::string why;
    Error e = parse_frame(MessageType::text, prefix, f, why);
    if (n < 2) {
      EXPECT_EQ(e, Error::malformed_frame);
    } else {
      ASSERT_EQ(e, Error::none);
      EXPECT_EQ(std::to_string(f.ack), full.substr(1, n - 1));
    }
  }
}

TEST(Decimal, AcceptsOnlyCanonicalU64) {
  using tether::resume::detail::parse_decimal;
  uint64_t v = 1;
  EXPECT_TRUE(parse_decimal("0", v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_decimal("18446744073709551615", v));
  EXPECT_EQ(v, UINT64_MAX);
  for (const char* bad : {"", "00", "01", "18446744073709551616", "99999999999999999999",
                          "100000000000000000000", "1a", " 1", "-0", "+1"})
    EXPECT_FALSE(parse_decimal(bad, v)) << bad;
}

TEST(SessionIdFormat, Is32LowercaseHexFromSixteenRandomBytes) {
  tether::protocol::CountingRandom rng(0);
  SessionId a = SessionId::generate(rng);
  EXPECT_EQ(a.view(), "000102030405060708090a0b0c0d0e0f");
  SessionId b = SessionId::generate(rng);
  EXPECT_EQ(b.view(), "101112131415161718191a1b1c1d1e1f");
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(SessionId().empty());
  EXPECT_EQ(SessionId().view(), "");
  EXPECT_FALSE(SessionId::parse(""));
  EXPECT_FALSE(SessionId::parse("000102030405060708090a0b0c0d0e0F"));
  EXPECT_FALSE(SessionId::parse("000102030405060708090a0b0c0d0e0"));
  EXPECT_FALSE(SessionId::parse("000102030405060708090a0b0c0d0e0f0"));
  EXPECT_FALSE(SessionId::parse("000102030405060708090a0b0c0d0e0g"));
}

TEST(ErrorCode, HasACategoryAndMapsToCloseCodes) {
  std::error_code ec = Error::sequence_gap;
  EXPECT_EQ(ec.category().name(), std::string("tether.resume"));
  EXPECT_EQ(ec.message(), "sequence gap");
  EXPECT_EQ(tether::resume::close_code(Error::malformed_frame), 1002);
  EXPECT_EQ(tether::resume::close_code(Error::sequence_gap), 1002);
  EXPECT_EQ(tether::resume::close_code(Error::invalid_ack), 1002);
  EXPECT_EQ(tether::resume::close_code(Error::too_many_sessions), 1013);
}

}  // namespace
