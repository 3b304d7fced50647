// RFC 6455 §5.5.1 close bodies and §7.4 status codes.
#include "codec/close_payload.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace tether::codec {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes body(uint16_t code, const std::string& reason) {
  // Sized up front (rather than insert()) to keep GCC 12's -Warray-bounds quiet.
  Bytes b(2 + reason.size());
  b[0] = static_cast<uint8_t>(code >> 8);
  b[1] = static_cast<uint8_t>(code);
  std::copy(reason.begin(), reason.end(), b.begin() + 2);
  return b;
}

TEST(Rfc6455_7_4, ReservedCodesNeverOnTheWire) {
  // §7.4.1: 1004 reserved; 1005, 1006, 1015 "MUST NOT be set as a status code in a Close
  // control frame by an endpoint".
  for (const uint16_t code : {1004, 1005, 1006, 1015}) {
    EXPECT_FALSE(is_valid_wire_close_code(code)) << code;
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(body(code, ""), out), ClosePayloadStatus::invalid_code) << code;
  }
}

TEST(Rfc6455_7_4, WireCodeRangesExhaustive) {
  for (uint32_t c = 0; c <= 0xFFFF; ++c) {
    const bool want =
        (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    ASSERT_EQ(is_valid_wire_close_code(static_cast<uint16_t>(c)), want) << c;
  }
}

TEST(Rfc6455_7_4, InvalidCodesRejected) {
  for (const uint16_t code : {0, 1, 999, 1016, 1100, 2000, 2999, 5000, 6000, 0xFFFF}) {
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(body(code, "x"), out), ClosePayloadStatus::invalid_code) << code;
  }
}

TEST(Rfc6455_7_4, DefinedCodesAccepted) {
  for (const uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                              1014, 3000, 3999, 4000, 4999}) {
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(body(code, ""), out), ClosePayloadStatus::ok) << code;
    EXPECT_EQ(out.code, code);
  }
}

TEST(Rfc6455_7_1_5, EmptyBodyMeansNoStatusCode1005) {
  ClosePayload out;
  out.code = 1000;
  out.reason = "stale";
  EXPECT_EQ(parse_close_payload({}, out), ClosePayloadStatus::ok);
  EXPECT_EQ(out.code, 1005);
  EXPECT_TRUE(out.reason.empty());
}

TEST(Rfc6455_5_5_1, OneByteBodyRejected) {
  for (const uint8_t b : {0x00, 0x03, 0xFF}) {
    const Bytes one = {b};
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(one, out), ClosePayloadStatus::one_byte);
  }
}

TEST(Rfc6455_5_5_1, CodeIsBigEndian) {
  const Bytes wire = {0x03, 0xE8, 'b', 'y', 'e'};  // 0x03E8 = 1000
  ClosePayload out;
  ASSERT_EQ(parse_close_payload(wire, out), ClosePayloadStatus::ok);
  EXPECT_EQ(out.code, 1000);
  EXPECT_EQ(out.reason, "bye");
  // The reason is a view into the caller's buffer, not a copy.
  EXPECT_EQ(static_cast<const void*>(out.reason.data()), static_cast<const void*>(wire.data() + 2));
}

TEST(Rfc6455_5_5_1, ReasonMustBeUtf8) {
  const std::string bad[] = {
      "\x80",                              // stray continuation
      "ok\xC0\xAF",                        // overlong '/'
      "\xED\xA0\x80",                      // surrogate U+D800
      "\xF4\x90\x80\x80",                  // U+110000
      std::string("\xCE\xBA\xE1\xBD", 4),  // truncated at the end of the body
  };
  for (const auto& reason : bad) {
    ClosePayload out;
    out.code = 4242;
    EXPECT_EQ(parse_close_payload(body(1000, reason), out), ClosePayloadStatus::invalid_utf8);
    EXPECT_EQ(out.code, 4242) << "out is untouched on error";
  }
}

TEST(Rfc6455_5_5_1, Utf8ReasonAccepted) {
  ClosePayload out;
  const std::string reason = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";  // "κόσμε"
  const Bytes wire = body(1001, reason);  // out.reason views this buffer
  ASSERT_EQ(parse_close_payload(wire, out), ClosePayloadStatus::ok);
  EXPECT_EQ(out.code, 1001);
  EXPECT_EQ(out.reason, reason);
}

TEST(ClosePayload, RoundTrip) {
  const std::string reasons[] = {"", "bye", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",
                                 std::string(123, 'r')};  // 2 + 123 = 125, the §5.5 limit
  for (const uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000, 4999}) {
    for (const auto& reason : reasons) {
      uint8_t buf[2 + 123];
      const std::size_t n = encode_close_payload(code, reason, buf);
      ASSERT_EQ(n, 2 + reason.size());
      EXPECT_EQ(buf[0], code >> 8);
      EXPECT_EQ(buf[1], code & 0xFF);
      ClosePayload out;
      ASSERT_EQ(parse_close_payload(std::span(buf, n), out), ClosePayloadStatus::ok);
      EXPECT_EQ(out.code, code);
      EXPECT_EQ(out.reason, reason);
    }
  }
}

TEST(ClosePayload, Encode1005WritesEmptyBody) {
  uint8_t buf[8] = {0xAA, 0xAA};
  EXPECT_EQ(encode_close_payload(1005, "ignored", buf), 0u);
  EXPECT_EQ(buf[0], 0xAA);
  ClosePayload out;
  ASSERT_EQ(parse_close_payload(std::span(buf, 0), out), ClosePayloadStatus::ok);
  EXPECT_EQ(out.code, 1005);
}

TEST(ClosePayload, EncodeCodeWithoutReason) {
  uint8_t buf[2];
  EXPECT_EQ(encode_close_payload(1000, {}, buf), 2u);
  EXPECT_EQ(buf[0], 0x03);
  EXPECT_EQ(buf[1], 0xE8);
}

}  // namespace
}  // namespace tether::codec
