// RFC 6455 §5.2 framing and the §5.7 examples.
#include "codec/frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "codec/mask.hpp"

namespace tether::codec {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t key_from_wire(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const uint8_t raw[4] = {a, b, c, d};
  uint32_t k;
  std::memcpy(&k, raw, 4);
  return k;
}

FrameHeader make_header(bool fin, Opcode op, uint64_t len, bool masked = false, uint32_t key = 0) {
  FrameHeader h;
  h.fin = fin;
  h.opcode = op;
  h.payload_len = len;
  h.masked = masked;
  h.mask_key = key;
  return h;
}

void expect_same_header(const FrameHeader& got, const FrameHeader& want) {
  EXPECT_EQ(got.fin, want.fin);
  EXPECT_EQ(got.rsv1, want.rsv1);
  EXPECT_EQ(got.rsv2, want.rsv2);
  EXPECT_EQ(got.rsv3, want.rsv3);
  EXPECT_EQ(got.opcode, want.opcode);
  EXPECT_EQ(got.masked, want.masked);
  EXPECT_EQ(got.payload_len, want.payload_len);
  if (want.masked) {
    EXPECT_EQ(got.mask_key, want.mask_key);
  }
}

// Parses `wire` and checks header, header size and payload (unmasked when masked).
void expect_frame(const Bytes& wire, const FrameHeader& want, std::size_t want_header_size,
                  const std::string& want_payload) {
  FrameHeader got;
  std::size_t consumed = 0;
  ASSERT_EQ(parse_header(wire, got, consumed), HeaderStatus::ok);
  EXPECT_EQ(consumed, want_header_size);
  expect_same_header(got, want);
  ASSERT_EQ(wire.size() - consumed, got.payload_len);
  Bytes payload(wire.begin() + static_cast<std::ptrdiff_t>(consumed), wire.end());
  if (got.masked) apply_mask(payload.data(), payload.size(), got.mask_key);
  EXPECT_EQ(std::string(payload.begin(), payload.end()), want_payload);

  // The encoder reproduces the header byte for byte.
  uint8_t out[max_header_size];
  ASSERT_EQ(encode_header(want, out), want_header_size);
  EXPECT_EQ(Bytes(out, out + want_header_size),
            Bytes(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(want_header_size)));
}

// ---- §5.7 examples, byte for byte.

TEST(Rfc6455_5_7, SingleFrameUnmaskedHello) {
  const Bytes wire = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  expect_frame(wire, make_header(true, Opcode::text, 5), 2, "Hello");
}

TEST(Rfc6455_5_7, SingleFrameMaskedHello) {
  const Bytes wire = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  const uint32_t key = key_from_wire(0x37, 0xfa, 0x21, 0x3d);
  expect_frame(wire, make_header(true, Opcode::text, 5, true, key), 6, "Hello");
}

TEST(Rfc6455_5_7, FragmentedUnmaskedHello) {
  const Bytes first = {0x01, 0x03, 0x48, 0x65, 0x6c};
  const Bytes second = {0x80, 0x02, 0x6c, 0x6f};
  expect_frame(first, make_header(false, Opcode::text, 3), 2, "Hel");
  expect_frame(second, make_header(true, Opcode::continuation, 2), 2, "lo");
}

TEST(Rfc6455_5_7, UnmaskedPingHello) {
  const Bytes wire = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  expect_frame(wire, make_header(true, Opcode::ping, 5), 2, "Hello");
}

TEST(Rfc6455_5_7, MaskedPongHello) {
  const Bytes wire = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  const uint32_t key = key_from_wire(0x37, 0xfa, 0x21, 0x3d);
  expect_frame(wire, make_header(true, Opcode::pong, 5, true, key), 6, "Hello");
}

TEST(Rfc6455_5_7, Binary256BytesUses16BitLength) {
  Bytes wire = {0x82, 0x7E, 0x01, 0x00};
  const std::string payload(256, 'x');
  wire.insert(wire.end(), payload.begin(), payload.end());
  expect_frame(wire, make_header(true, Opcode::binary, 256), 4, payload);
}

TEST(Rfc6455_5_7, Binary64KiBUses64BitLength) {
  Bytes wire = {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  const std::string payload(65536, 'y');
  wire.insert(wire.end(), payload.begin(), payload.end());
  expect_frame(wire, make_header(true, Opcode::binary, 65536), 10, payload);
}

// ---- Table of well-formed headers: every prefix is need_more, the whole header is ok.

struct HeaderCase {
  const char* name;
  Bytes wire;  // header only
  FrameHeader want;
};

std::vector<HeaderCase> header_cases() {
  const uint32_t key = key_from_wire(0x37, 0xfa, 0x21, 0x3d);
  FrameHeader rsv = make_header(false, Opcode::binary, 0);
  rsv.rsv1 = rsv.rsv2 = rsv.rsv3 = true;
  return {
      {"unmasked hello", {0x81, 0x05}, make_header(true, Opcode::text, 5)},
      {"masked hello",
       {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d},
       make_header(true, Opcode::text, 5, true, key)},
      {"empty close", {0x88, 0x00}, make_header(true, Opcode::close, 0)},
      {"len 125", {0x82, 0x7D}, make_header(true, Opcode::binary, 125)},
      {"len 126", {0x82, 0x7E, 0x00, 0x7E}, make_header(true, Opcode::binary, 126)},
      {"len 256", {0x82, 0x7E, 0x01, 0x00}, make_header(true, Opcode::binary, 256)},
      {"len 0xFFFF masked",
       {0x82, 0xFE, 0xFF, 0xFF, 1, 2, 3, 4},
       make_header(true, Opcode::binary, 0xFFFF, true, key_from_wire(1, 2, 3, 4))},
      {"len 64KiB",
       {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00},
       make_header(true, Opcode::binary, 65536)},
      {"len 2^63-1 masked",
       {0x02, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xAA, 0xBB, 0xCC, 0xDD},
       make_header(false, Opcode::binary, 0x7FFFFFFFFFFFFFFFull, true,
                   key_from_wire(0xAA, 0xBB, 0xCC, 0xDD))},
      {"rsv bits", {0x72, 0x00}, rsv},
  };
}

TEST(FrameHeader, EveryPrefixNeedsMoreUntilComplete) {
  for (const auto& c : header_cases()) {
    SCOPED_TRACE(c.name);
    for (std::size_t len = 0; len < c.wire.size(); ++len) {
      FrameHeader h;
      std::size_t consumed = 99;
      EXPECT_EQ(parse_header(std::span(c.wire.data(), len), h, consumed), HeaderStatus::need_more)
          << "prefix " << len;
      EXPECT_EQ(consumed, 99u) << "need_more must consume nothing";
    }
  }
}

TEST(FrameHeader, ChunkedArrivalCompletesExactlyAtHeaderEnd) {
  for (const auto& c : header_cases()) {
    SCOPED_TRACE(c.name);
    Bytes wire = c.wire;
    wire.insert(wire.end(), {0xde, 0xad, 0xbe, 0xef});  // payload bytes must not be consumed
    const std::size_t n = wire.size();
    for (std::size_t chunk = 1; chunk <= n; ++chunk) {
      Bytes buf;
      bool done = false;
      for (std::size_t pos = 0; pos < n && !done; pos += chunk) {
        const std::size_t take = std::min(chunk, n - pos);
        buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(pos),
                   wire.begin() + static_cast<std::ptrdiff_t>(pos + take));
        FrameHeader h;
        std::size_t consumed = 0;
        const HeaderStatus st = parse_header(buf, h, consumed);
        if (buf.size() < c.wire.size()) {
          EXPECT_EQ(st, HeaderStatus::need_more) << "chunk " << chunk << " have " << buf.size();
        } else {
          ASSERT_EQ(st, HeaderStatus::ok) << "chunk " << chunk;
          EXPECT_EQ(consumed, c.wire.size());
          expect_same_header(h, c.want);
          done = true;
        }
      }
      EXPECT_TRUE(done) << "chunk " << chunk;
    }
  }
}

TEST(FrameHeader, EncodeMatchesTable) {
  for (const auto& c : header_cases()) {
    SCOPED_TRACE(c.name);
    uint8_t out[max_header_size];
    const std::size_t n = encode_header(c.want, out);
    EXPECT_EQ(n, header_size(c.want.payload_len, c.want.masked));
    EXPECT_EQ(Bytes(out, out + n), c.wire);
  }
}

// ---- §5.2 MUSTs.

TEST(Rfc6455_5_2, LengthMustUseMinimalEncoding) {
  struct Case {
    Bytes wire;
    HeaderStatus want;
  };
  const Case cases[] = {
      {{0x82, 0x7E, 0x00, 0x00}, HeaderStatus::non_minimal_length},
      {{0x82, 0x7E, 0x00, 0x7D}, HeaderStatus::non_minimal_length},  // 125 fits in 7 bits
      {{0x82, 0x7E, 0x00, 0x7E}, HeaderStatus::ok},                  // 126 is the first 16-bit
      {{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x00, 0x05}, HeaderStatus::non_minimal_length},
      {{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x00, 0x7E}, HeaderStatus::non_minimal_length},
      {{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, HeaderStatus::non_minimal_length},  // fits 16
      {{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, HeaderStatus::ok},  // first 64-bit length
  };
  for (const auto& c : cases) {
    FrameHeader h;
    std::size_t consumed = 0;
    EXPECT_EQ(parse_header(c.wire, h, consumed), c.want);
  }
}

TEST(Rfc6455_5_2, NonMinimalLengthRejectedBeforeMaskKeyArrives) {
  // Masked, 16-bit length 5: the error is known once the length bytes are in.
  const Bytes wire = {0x81, 0xFE, 0x00, 0x05};
  FrameHeader h;
  std::size_t consumed = 0;
  EXPECT_EQ(parse_header(std::span(wire.data(), 3), h, consumed), HeaderStatus::need_more);
  EXPECT_EQ(parse_header(wire, h, consumed), HeaderStatus::non_minimal_length);
}

TEST(Rfc6455_5_2, SixtyFourBitLengthMostSignificantBitMustBeZero) {
  const Bytes cases[] = {
      {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0},
      {0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
      {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4},
  };
  for (const auto& wire : cases) {
    FrameHeader h;
    std::size_t consumed = 0;
    EXPECT_EQ(parse_header(wire, h, consumed), HeaderStatus::length_msb_set);
  }
}

TEST(Rfc6455_5_2, EncoderUsesMinimalLengthEncoding) {
  const uint64_t lengths[] = {
      0,      1,       125,     126,           127,        0xFFFE,
      0xFFFF, 0x10000, 0x10001, 0xFFFFFFFFull, 1ull << 32, 0x7FFFFFFFFFFFFFFFull};
  for (const bool masked : {false, true}) {
    for (const uint64_t len : lengths) {
      SCOPED_TRACE(len);
      const FrameHeader want =
          make_header(true, Opcode::binary, len, masked, key_from_wire(9, 8, 7, 6));
      uint8_t out[max_header_size];
      const std::size_t n = encode_header(want, out);
      EXPECT_EQ(n, header_size(len, masked));
      const uint8_t len7 = out[1] & 0x7F;
      EXPECT_EQ(len7, len < 126 ? len : len <= 0xFFFF ? 126 : 127);
      FrameHeader got;
      std::size_t consumed = 0;
      ASSERT_EQ(parse_header(std::span(out, n), got, consumed), HeaderStatus::ok);
      EXPECT_EQ(consumed, n);
      expect_same_header(got, want);
    }
  }
}

TEST(Rfc6455_5_2, MaskKeyKeptInWireOrder) {
  const Bytes wire = {0x81, 0x80, 0x01, 0x02, 0x03, 0x04};
  FrameHeader h;
  std::size_t consumed = 0;
  ASSERT_EQ(parse_header(wire, h, consumed), HeaderStatus::ok);
  uint8_t raw[4];
  std::memcpy(raw, &h.mask_key, 4);
  EXPECT_EQ(Bytes(raw, raw + 4), (Bytes{0x01, 0x02, 0x03, 0x04}));
}

TEST(FrameHeader, AllBitsAndOpcodesDecodedUnjudged) {
  // The codec decodes every opcode (including reserved ones) and RSV bit; judging is the
  // protocol layer's job.
  for (int b0 = 0; b0 < 256; ++b0) {
    const Bytes wire = {static_cast<uint8_t>(b0), 0x00};
    FrameHeader h;
    std::size_t consumed = 0;
    ASSERT_EQ(parse_header(wire, h, consumed), HeaderStatus::ok);
    EXPECT_EQ(h.fin, (b0 & 0x80) != 0);
    EXPECT_EQ(h.rsv1, (b0 & 0x40) != 0);
    EXPECT_EQ(h.rsv2, (b0 & 0x20) != 0);
    EXPECT_EQ(h.rsv3, (b0 & 0x10) != 0);
    EXPECT_EQ(static_cast<uint8_t>(h.opcode), b0 & 0x0F);
    uint8_t out[max_header_size];
    ASSERT_EQ(encode_header(h, out), 2u);
    EXPECT_EQ(out[0], b0);
  }
}

TEST(FrameHeader, OpcodeHelpers) {
  // §5.2: 0x3-0x7 and 0xB-0xF are reserved; §5.5: control frames have the high opcode bit.
  for (uint8_t op = 0; op < 16; ++op) {
    const bool known = op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10;
    EXPECT_EQ(is_known_opcode(op), known) << int(op);
    EXPECT_EQ(is_control(static_cast<Opcode>(op)), op >= 8) << int(op);
  }
}

TEST(FrameHeader, HeaderSize) {
  EXPECT_EQ(header_size(0, false), 2u);
  EXPECT_EQ(header_size(125, true), 6u);
  EXPECT_EQ(header_size(126, false), 4u);
  EXPECT_EQ(header_size(0xFFFF, true), 8u);
  EXPECT_EQ(header_size(0x10000, false), 10u);
  EXPECT_EQ(header_size(0x10000, true), max_header_size);
}

}  // namespace
}  // namespace tether::codec
