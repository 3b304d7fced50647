// protocol::Connection against RFC 6455: framing (§5), closing (§5.5.1, §7), UTF-8 (§8.1),
// limits (§10.4) and the opening handshake driven through the connection (§4).
// Every scenario that feeds bytes runs through run_chunked(): the input whole, then split at
// every chunk size (a subset for big inputs) and at random, and every run must produce the
// same events and the same output bytes.
#include "protocol/connection.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connection_harness.hpp"

namespace tether_conn_test {
namespace {

using tether::protocol::ClientHandshakeRequest;
using tether::protocol::CountingRandom;
using tether::protocol::ServerHandshakeConfig;

constexpr std::array<Role, 2> kRoles = {Role::server, Role::client};

const char* role_name(Role r) { return r == Role::server ? "server role" : "client role"; }

Scenario scenario(Role role, Bytes input) {
  Scenario s;
  s.role = role;
  s.input = std::move(input);
  return s;
}

// A connection driven by hand (not chunked), already open.
struct Live {
  explicit Live(Role role, uint8_t seed = 0x10) : rng(seed) {
    cfg.role = role;
    cfg.rng = &rng;
    conn = std::make_unique<Connection>(cfg, rec);
    rec.conn = conn.get();
    if (role == Role::client) conn->start_client(rfc_client_request());
  }
  void open() {
    feed(bytes(cfg.role == Role::server ? kUpgradeRequest : kResponse101));
    ASSERT_EQ(conn->state(), State::open);
    rec.events.clear();
    conn->consume_out(conn->out().size());
  }
  void feed(Bytes b) { conn->receive(b); }
  Bytes take_out() {
    Bytes b(conn->out().data(), conn->out().data() + conn->out().size());
    conn->consume_out(conn->out().size());
    return b;
  }
  ConnectionConfig cfg;
  Recorder rec;
  CountingRandom rng;
  std::unique_ptr<Connection> conn;
};

void expect_open_and_quiet(const Outcome& o) {
  EXPECT_EQ(o.state, State::open);
  EXPECT_FALSE(o.close_transport);
}

// ============================================================================================
// §5.7 examples

const Bytes kMaskedHello = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
const Bytes kUnmaskedHello = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};

TEST(Rfc6455_5_7, MaskedHelloToServer) {
  EXPECT_EQ(masked(kText, "Hello"), kMaskedHello);  // the builder agrees with the RFC
  Outcome o = run_chunked(scenario(Role::server, kMaskedHello));
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("Hello")});
  EXPECT_TRUE(o.out.empty());
  expect_open_and_quiet(o);
}

TEST(Rfc6455_5_7, UnmaskedHelloToClient) {
  Outcome o = run_chunked(scenario(Role::client, kUnmaskedHello));
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("Hello")});
  EXPECT_TRUE(o.out.empty());
  expect_open_and_quiet(o);
}

TEST(Rfc6455_5_7, FragmentedHelloUnmaskedToClient) {
  const Bytes wire = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
  Outcome o = run_chunked(scenario(Role::client, wire));
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("Hello")});
  EXPECT_TRUE(o.out.empty());
}

TEST(Rfc6455_5_7, FragmentedHelloMaskedToServer) {
  const Bytes wire = {0x01, 0x83, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
                      0x80, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x5b, 0x95};
  EXPECT_EQ(wire, cat({masked(kText, "Hel", false), masked(kCont, "lo")}));
  Outcome o = run_chunked(scenario(Role::server, wire));
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("Hello")});
  EXPECT_TRUE(o.out.empty());
}

TEST(Rfc6455_5_7, MaskedPingToServerGetsUnmaskedPong) {
  const Bytes ping = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  Outcome o = run_chunked(scenario(Role::server, ping));
  EXPECT_EQ(o.events, std::vector<Event>{ev_ping(bytes("Hello"))});
  EXPECT_EQ(o.out, (Bytes{0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(Rfc6455_5_7, UnmaskedPingToClientGetsMaskedPong) {
  const Bytes ping = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  Outcome o = run_chunked(scenario(Role::client, ping));
  EXPECT_EQ(o.events, std::vector<Event>{ev_ping(bytes("Hello"))});
  // Key 10 11 12 13 from CountingRandom(0x10).
  EXPECT_EQ(o.out, (Bytes{0x8a, 0x85, 0x10, 0x11, 0x12, 0x13, 0x58, 0x74, 0x7e, 0x7f, 0x7f}));
}

TEST(Rfc6455_5_7, Binary256BytesUses16BitLength) {
  const Bytes payload = repeat_pattern(256);
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes wire = from_peer(role, kBinary, payload);
    ASSERT_EQ(wire[1] & 0x7f, 126);
    ASSERT_EQ(wire[2], 0x01);
    ASSERT_EQ(wire[3], 0x00);
    Outcome o = run_chunked(scenario(role, wire));
    EXPECT_EQ(o.events, std::vector<Event>{ev_binary(payload)});
    EXPECT_TRUE(o.out.empty());
    expect_open_and_quiet(o);
  }
}

TEST(Rfc6455_5_7, Binary64KiBUses64BitLength) {
  const Bytes payload = repeat_pattern(65536, 7);
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes wire = from_peer(role, kBinary, payload);
    ASSERT_EQ(wire[1] & 0x7f, 127);
    ASSERT_EQ(Bytes(wire.begin() + 2, wire.begin() + 10),
              (Bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
    Outcome o = run_chunked(scenario(role, wire));
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0], ev_binary(payload));
    EXPECT_TRUE(o.out.empty());
    expect_open_and_quiet(o);
  }
}

// ============================================================================================
// §5.1 / §5.3 masking

TEST(Rfc6455_5_1, ServerMustFailUnmaskedClientFrame) {
  const std::vector<Bytes> inputs = {
      unmasked(kText, "Hello"),
      unmasked(kBinary, "x"),
      unmasked(kPing, ""),
      unmasked(kClose, close_body(1000)),
      cat({masked(kText, "He", false), unmasked(kCont, "llo")}),  // unmasked continuation
      cat({masked(kText, "ok"), unmasked(kText, "bad")}),
  };
  for (const auto& in : inputs) {
    SCOPED_TRACE(hex(in));
    Outcome o = run_chunked(scenario(Role::server, in));
    expect_failed(o, 1002, Role::server);
    for (std::size_t i = 0; i + 1 < o.events.size(); ++i) EXPECT_EQ(o.events[i], ev_text("ok"));
  }
}

TEST(Rfc6455_5_1, ClientMustFailMaskedServerFrame) {
  const std::vector<Bytes> inputs = {
      masked(kText, "Hello"),
      masked(kBinary, ""),
      masked(kPing, "p"),
      masked(kPong, "p"),
      masked(kClose, close_body(1000)),
      cat({unmasked(kText, "He", false), masked(kCont, "llo")}),
  };
  for (const auto& in : inputs) {
    SCOPED_TRACE(hex(in));
    Outcome o = run_chunked(scenario(Role::client, in));
    expect_failed(o, 1002, Role::client);
    EXPECT_EQ(o.events.size(), 1u);
  }
}

TEST(Rfc6455_5_1, ServerOutputNeverMasked) {
  Live l(Role::server);
  l.open();
  const Bytes big = repeat_pattern(200);
  ASSERT_TRUE(l.conn->send_text("Hello"));
  ASSERT_TRUE(l.conn->send(Opcode::binary, big));
  ASSERT_TRUE(l.conn->ping(bytes("p")));
  ASSERT_TRUE(l.conn->pong(bytes("q")));
  l.feed(masked(kPing, "x"));  // answered with an unmasked pong
  ASSERT_TRUE(l.conn->close(1000, "bye"));
  Bytes want = cat({{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
                    {0x82, 0x7e, 0x00, 0xc8},
                    big,
                    {0x89, 0x01, 'p'},
                    {0x8a, 0x01, 'q'},
                    {0x8a, 0x01, 'x'},
                    {0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'}});
  EXPECT_EQ(l.take_out(), want);
}

TEST(Rfc6455_5_1, ClientMustMaskEveryFrame) {
  // CountingRandom(0x10) yields keys 10 11 12 13, 14 15 16 17, ... one per frame (§5.3: a
  // fresh key for each frame).
  Live l(Role::client, 0x10);
  l.open();
  ASSERT_TRUE(l.conn->send_text("Hello"));
  ASSERT_TRUE(l.conn->send_text("Hello"));
  ASSERT_TRUE(l.conn->ping(bytes("ab")));
  ASSERT_TRUE(l.conn->send(Opcode::binary, {}));
  ASSERT_TRUE(l.conn->close(1000, "done"));
  const Bytes want = {
      0x81, 0x85, 0x10, 0x11, 0x12, 0x13, 0x58, 0x74, 0x7e, 0x7f, 0x7f,        // "Hello"
      0x81, 0x85, 0x14, 0x15, 0x16, 0x17, 0x5c, 0x70, 0x7a, 0x7b, 0x7b,        // "Hello", new key
      0x89, 0x82, 0x18, 0x19, 0x1a, 0x1b, 0x79, 0x7b,                          // ping "ab"
      0x82, 0x80, 0x1c, 0x1d, 0x1e, 0x1f,                                      // empty binary
      0x88, 0x86, 0x20, 0x21, 0x22, 0x23, 0x23, 0xc9, 0x46, 0x4c, 0x4e, 0x44,  // close 1000 done
  };
  EXPECT_EQ(l.take_out(), want);
}

TEST(Rfc6455_5_3, ClientLongFrameMaskedAcrossWords) {
  // A payload long enough for the word-at-a-time masking path, at an odd output offset.
  Live l(Role::client, 0x40);
  l.open();
  ASSERT_TRUE(l.conn->send_text("x"));  // shifts the next frame's alignment in out()
  const Bytes payload = repeat_pattern(1000, 3);
  ASSERT_TRUE(l.conn->send(Opcode::binary, payload));
  auto frames = decode_frames(l.take_out());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[1].masked);
  EXPECT_EQ(frames[1].key, (std::array<uint8_t, 4>{0x44, 0x45, 0x46, 0x47}));
  EXPECT_EQ(frames[1].payload, payload);
}

// ============================================================================================
// §5.2 base framing

TEST(Rfc6455_5_2, RsvBitsWithoutExtensionFail) {
  for (Role role : kRoles) {
    for (uint8_t rsv : {0x40, 0x20, 0x10, 0x60, 0x70}) {
      for (uint8_t op : {kText, kBinary, kPing, kPong, kClose}) {
        SCOPED_TRACE(testing::Message()
                     << role_name(role) << " rsv " << int{rsv} << " op " << int{op});
        Bytes payload = op == kClose ? close_body(1000) : bytes("abc");
        Outcome o = run_chunked(scenario(role, from_peer(role, op, payload, true, rsv)));
        expect_failed(o, 1002, role);
        EXPECT_EQ(o.events.size(), 1u);
      }
      SCOPED_TRACE(testing::Message() << role_name(role) << " rsv on continuation");
      Outcome o = run_chunked(scenario(role, cat({from_peer(role, kText, "ab", false),
                                                  from_peer(role, kCont, "c", true, rsv)})));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
  }
}

TEST(Rfc6455_5_2, ReservedOpcodesFail) {
  for (Role role : kRoles) {
    for (uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
      for (std::string_view payload : {"", "xyz"}) {
        SCOPED_TRACE(testing::Message()
                     << role_name(role) << " opcode " << int{op} << " len " << payload.size());
        Outcome o = run_chunked(scenario(role, from_peer(role, op, payload)));
        expect_failed(o, 1002, role);
        EXPECT_EQ(o.events.size(), 1u);
      }
      SCOPED_TRACE(testing::Message()
                   << role_name(role) << " opcode " << int{op} << " inside a fragmented message");
      Outcome o =
          run_chunked(scenario(role, cat({from_peer(role, kText, "a", false),
                                          from_peer(role, op, "b"), from_peer(role, kCont, "c")})));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
  }
}

TEST(Rfc6455_5_2, NonMinimalLengthEncodingFails) {
  // 5 in 16 bits, 125 in 16 bits, 5 in 64 bits, 65535 in 64 bits.
  const std::vector<Bytes> headers = {
      {0x82, 0x7e, 0x00, 0x05},
      {0x82, 0x7e, 0x00, 0x7d},
      {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x00, 0x05},
      {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
  };
  for (Role role : kRoles) {
    for (Bytes h : headers) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " " << hex(h));
      if (role == Role::server) {
        h[1] |= 0x80;
        h.insert(h.end(), kKey.begin(), kKey.end());
      }
      Bytes in = cat({h, repeat_pattern(8)});
      Outcome o = run_chunked(scenario(role, in));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
  }
}

TEST(Rfc6455_5_2, SixtyFourBitLengthMsbMustBeZero) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes in = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0x01};
    if (role == Role::server) {
      in[1] |= 0x80;
      in.insert(in.end(), kKey.begin(), kKey.end());
    }
    in.push_back('z');
    Outcome o = run_chunked(scenario(role, in));
    expect_failed(o, 1002, role);
  }
}

TEST(Rfc6455_5_2, OutputUsesMinimalLengthEncoding) {
  struct Case {
    std::size_t len;
    Bytes header;
  };
  const std::vector<Case> cases = {
      {0, {0x82, 0x00}},
      {125, {0x82, 0x7d}},
      {126, {0x82, 0x7e, 0x00, 0x7e}},
      {65535, {0x82, 0x7e, 0xff, 0xff}},
      {65536, {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.len);
    Live l(Role::server);
    l.open();
    const Bytes payload = repeat_pattern(c.len);
    ASSERT_TRUE(l.conn->send(Opcode::binary, payload));
    EXPECT_EQ(l.take_out(), cat({c.header, payload}));
  }
}

TEST(Rfc6455_5_2, EmptyFramesAccepted) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes in = cat({from_peer(role, kText, ""), from_peer(role, kBinary, ""),
                    from_peer(role, kPong, ""), from_peer(role, kText, "", false),
                    from_peer(role, kCont, "", false), from_peer(role, kCont, "")});
    Outcome o = run_chunked(scenario(role, in));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_text(""), ev_binary({}), ev_pong({}), ev_text("")}));
    EXPECT_TRUE(o.out.empty());
    expect_open_and_quiet(o);
  }
}

// ============================================================================================
// §5.4 fragmentation

TEST(Rfc6455_5_4, FragmentedMessagesReassembled) {
  const Bytes bin = repeat_pattern(300, 9);
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes in = cat({
        from_peer(role, kText, "Hel", false),
        from_peer(role, kCont, "", false),
        from_peer(role, kCont, "l", false),
        from_peer(role, kCont, "o"),
        from_peer(role, kBinary, std::span(bin).first(100), false),
        from_peer(role, kCont, std::span(bin).subspan(100, 150), false),
        from_peer(role, kCont, std::span(bin).subspan(250)),
        from_peer(role, kText, "after"),
    });
    Outcome o = run_chunked(scenario(role, in));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_text("Hello"), ev_binary(bin), ev_text("after")}));
    EXPECT_TRUE(o.out.empty());
  }
}

TEST(Rfc6455_5_4, ControlFramesMayBeInterleaved) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes in = cat({
        from_peer(role, kText, "Hel", false),
        from_peer(role, kPing, "p1"),
        from_peer(role, kPong, "q"),
        from_peer(role, kCont, "l", false),
        from_peer(role, kPing, "p2"),
        from_peer(role, kCont, "o"),
    });
    Outcome o = run_chunked(scenario(role, in));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(bytes("p1")), ev_pong(bytes("q")),
                                            ev_ping(bytes("p2")), ev_text("Hello")}));
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].opcode, kPong);
    EXPECT_EQ(frames[0].payload, bytes("p1"));
    EXPECT_EQ(frames[1].opcode, kPong);
    EXPECT_EQ(frames[1].payload, bytes("p2"));
    for (const auto& f : frames) EXPECT_EQ(f.masked, role == Role::client);
    expect_open_and_quiet(o);
  }
}

TEST(Rfc6455_5_4, ContinuationWithoutStartFails) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    {
      Outcome o = run_chunked(scenario(role, from_peer(role, kCont, "x")));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
    {
      Outcome o = run_chunked(scenario(role, from_peer(role, kCont, "x", false)));
      expect_failed(o, 1002, role);
    }
    {  // after a complete message, there is no message to continue
      Outcome o = run_chunked(
          scenario(role, cat({from_peer(role, kText, "done"), from_peer(role, kCont, "x")})));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.front(), ev_text("done"));
      EXPECT_EQ(o.events.size(), 2u);
    }
    {  // and not after a fragmented one either
      Outcome o = run_chunked(
          scenario(role, cat({from_peer(role, kText, "a", false), from_peer(role, kCont, "b"),
                              from_peer(role, kCont, "c")})));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.front(), ev_text("ab"));
    }
  }
}

TEST(Rfc6455_5_4, NewMessageDuringFragmentedMessageFails) {
  for (Role role : kRoles) {
    for (uint8_t first : {kText, kBinary}) {
      for (uint8_t second : {kText, kBinary}) {
        for (bool second_fin : {true, false}) {
          SCOPED_TRACE(testing::Message() << role_name(role) << " " << int{first} << " then "
                                          << int{second} << " fin " << second_fin);
          Outcome o = run_chunked(scenario(role, cat({from_peer(role, first, "a", false),
                                                      from_peer(role, second, "b", second_fin)})));
          expect_failed(o, 1002, role);
          EXPECT_EQ(o.events.size(), 1u);
        }
      }
    }
  }
}

// ============================================================================================
// §5.5 control frames

TEST(Rfc6455_5_5, ControlFramesMustNotBeFragmented) {
  for (Role role : kRoles) {
    for (uint8_t op : {kPing, kPong, kClose}) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " op " << int{op});
      Bytes payload = op == kClose ? close_body(1000) : bytes("x");
      Outcome o = run_chunked(
          scenario(role, cat({from_peer(role, op, payload, false), from_peer(role, kCont, "")})));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
      EXPECT_EQ(decode_frames(o.out).size(), 1u);  // no pong, no echo
    }
  }
}

TEST(Rfc6455_5_5, ControlPayloadOver125Fails) {
  for (Role role : kRoles) {
    for (uint8_t op : {kPing, kPong, kClose}) {
      for (std::size_t len : {126u, 65536u}) {
        SCOPED_TRACE(testing::Message() << role_name(role) << " op " << int{op} << " len " << len);
        Bytes payload = repeat_pattern(len);
        if (op == kClose) {
          payload = close_body(1000, std::string(len - 2, 'r'));
        }
        Outcome o = run_chunked(scenario(role, from_peer(role, op, payload)));
        expect_failed(o, 1002, role);
        EXPECT_EQ(o.events.size(), 1u);
        EXPECT_EQ(decode_frames(o.out).size(), 1u);
      }
    }
  }
}

TEST(Rfc6455_5_5, ControlPayloadOf125Accepted) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes payload = repeat_pattern(125);
    const std::string reason(123, 'r');
    Outcome o = run_chunked(
        scenario(role, cat({from_peer(role, kPing, payload), from_peer(role, kPong, payload),
                            from_peer(role, kClose, close_body(1000, reason))})));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(payload), ev_pong(payload),
                                            ev_close(1000, reason, true, Cause::remote_close)}));
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].opcode, kPong);
    EXPECT_EQ(frames[0].payload, payload);
    EXPECT_EQ(frames[1].opcode, kClose);
  }
}

// ============================================================================================
// §5.5.1 Close

TEST(Rfc6455_5_5_1, CloseEchoesCode) {
  for (Role role : kRoles) {
    for (uint16_t code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " code " << code);
      Outcome o = run_chunked(scenario(role, from_peer(role, kClose, close_body(code, "bye"))));
      EXPECT_EQ(o.events, std::vector<Event>{ev_close(code, "bye", true, Cause::remote_close)});
      auto frames = decode_frames(o.out);
      ASSERT_EQ(frames.size(), 1u);
      EXPECT_EQ(frames[0].masked, role == Role::client);
      auto body = parse_close(frames[0]);
      ASSERT_TRUE(body.has_value());
      EXPECT_EQ(body->code, code);
      EXPECT_EQ(o.state, State::closed);
      EXPECT_TRUE(o.close_transport);
    }
  }
}

TEST(Rfc6455_5_5_1, ClientEchoIsMaskedExactly) {
  Outcome o = run_chunked(scenario(Role::client, {0x88, 0x02, 0x03, 0xe9}));
  EXPECT_EQ(o.events, std::vector<Event>{ev_close(1001, "", true, Cause::remote_close)});
  EXPECT_EQ(o.out, (Bytes{0x88, 0x82, 0x10, 0x11, 0x12, 0x13, 0x13, 0xf8}));
}

TEST(Rfc6455_5_5_1, EmptyCloseEchoedEmpty) {
  {
    Outcome o = run_chunked(scenario(Role::server, {0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d}));
    // §7.1.5: no status code in the close frame -> 1005.
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1005, "", true, Cause::remote_close)});
    EXPECT_EQ(o.out, (Bytes{0x88, 0x00}));
    EXPECT_EQ(o.state, State::closed);
    EXPECT_TRUE(o.close_transport);
  }
  {
    Outcome o = run_chunked(scenario(Role::client, {0x88, 0x00}));
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1005, "", true, Cause::remote_close)});
    EXPECT_EQ(o.out, (Bytes{0x88, 0x80, 0x10, 0x11, 0x12, 0x13}));
  }
}

TEST(Rfc6455_5_5_1, OneByteCloseBodyFails) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Outcome o = run_chunked(scenario(role, from_peer(role, kClose, Bytes{0x03})));
    expect_failed(o, 1002, role);
  }
}

TEST(Rfc6455_5_5_1, CloseReasonMustBeUtf8) {
  const std::vector<Bytes> bad = {
      {0xff}, {'o', 'k', 0xc0, 0x80}, {0xed, 0xa0, 0x80}, {0xe2, 0x82}, {0xf4, 0x90, 0x80, 0x80}};
  for (Role role : kRoles) {
    for (const auto& reason : bad) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " reason " << hex(reason));
      Outcome o =
          run_chunked(scenario(role, from_peer(role, kClose, cat({close_body(1000), reason}))));
      expect_failed(o, 1007, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
    SCOPED_TRACE("valid multi-byte reason");
    const std::string good =
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xe2\x82\xac \xf0\x9f\x98\x80";
    Outcome o = run_chunked(scenario(role, from_peer(role, kClose, close_body(1000, good))));
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1000, good, true, Cause::remote_close)});
  }
}

TEST(Rfc6455_5_5_1, CloseInsideFragmentedMessage) {
  // A close may arrive between fragments (it is a control frame): the partial message is
  // dropped, the close is answered.
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Outcome o = run_chunked(scenario(
        role, cat({from_peer(role, kText, "par", false), from_peer(role, kClose, close_body(1001)),
                   from_peer(role, kCont, "tial")})));
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1001, "", true, Cause::remote_close)});
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(parse_close(frames[0])->code, 1001);
  }
}

TEST(Rfc6455_5_5_1, NothingProcessedAfterPeerClose) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Scenario s =
        scenario(role, cat({from_peer(role, kClose, close_body(1000)),
                            from_peer(role, kText, "late"), from_peer(role, kPing, "p"),
                            from_peer(role, kClose, close_body(1001)), unmasked(0x3, "garbage")}));
    s.eof_after = true;
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1000, "", true, Cause::remote_close)});
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(parse_close(frames[0])->code, 1000);
  }
}

TEST(Rfc6455_5_5_1, NoDataFramesAfterSendingClose) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Live l(role);
    l.open();
    ASSERT_TRUE(l.conn->close(1000, "bye"));
    EXPECT_EQ(l.conn->state(), State::closing);
    EXPECT_FALSE(l.conn->should_close_transport());
    EXPECT_FALSE(l.conn->send_text("no"));
    EXPECT_FALSE(l.conn->send(Opcode::binary, bytes("no")));
    EXPECT_FALSE(l.conn->ping());
    EXPECT_FALSE(l.conn->pong());
    EXPECT_FALSE(l.conn->close(1001));
    auto frames = decode_frames(l.take_out());
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(parse_close(frames[0])->code, 1000);
    EXPECT_EQ(parse_close(frames[0])->reason, "bye");
    EXPECT_TRUE(l.rec.events.empty());
  }
}

// ============================================================================================
// §5.5.2 Ping, §5.5.3 Pong

TEST(Rfc6455_5_5_2, PingAnsweredWithSamePayload) {
  const std::vector<Bytes> payloads = {{}, bytes("Hello"), {0x00, 0xff, 0x00}, repeat_pattern(125)};
  for (Role role : kRoles) {
    for (const auto& p : payloads) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " len " << p.size());
      Outcome o = run_chunked(scenario(role, from_peer(role, kPing, p)));
      EXPECT_EQ(o.events, std::vector<Event>{ev_ping(p)});
      if (role == Role::server) {
        EXPECT_EQ(o.out, unmasked(kPong, p));
      } else {
        EXPECT_EQ(o.out,
                  frame(kPong, p, {true, 0, std::array<uint8_t, 4>{0x10, 0x11, 0x12, 0x13}}));
      }
      expect_open_and_quiet(o);
    }
  }
}

TEST(Rfc6455_5_5_2, EveryPingAnsweredInOrder) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Outcome o = run_chunked(
        scenario(role, cat({from_peer(role, kPing, "1"), from_peer(role, kPing, "22"),
                            from_peer(role, kText, "t"), from_peer(role, kPing, "333")})));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(bytes("1")), ev_ping(bytes("22")), ev_text("t"),
                                            ev_ping(bytes("333"))}));
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].payload, bytes("1"));
    EXPECT_EQ(frames[1].payload, bytes("22"));
    EXPECT_EQ(frames[2].payload, bytes("333"));
    for (const auto& f : frames) EXPECT_EQ(f.opcode, kPong);
  }
}

// §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response, unless
// it already received a Close frame." Having *sent* a Close (state closing) is not an exception;
// §5.5.1 only forbids data frames after our Close.
TEST(Rfc6455_5_5_2, PingAnsweredAfterSendingClose) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Scenario s = scenario(role, cat({from_peer(role, kPing, "late ping"),
                                     from_peer(role, kClose, close_body(1000))}));
    s.before = [](Connection& c) { ASSERT_TRUE(c.close(1000)); };
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(bytes("late ping")),
                                            ev_close(1000, "", true, Cause::local_close)}));
    auto frames = decode_frames(o.out);
    EXPECT_EQ(frames.size(), 2u) << "expected our close, then a pong";
    if (frames.size() != 2) continue;
    EXPECT_EQ(frames[0].opcode, kClose);
    EXPECT_EQ(frames[1].opcode, kPong);
    EXPECT_EQ(frames[1].payload, bytes("late ping"));
  }
}

TEST(Rfc6455_5_5_3, UnsolicitedPongIgnored) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Outcome o =
        run_chunked(scenario(role, cat({from_peer(role, kPong, "x"), from_peer(role, kPong, ""),
                                        from_peer(role, kText, "still open")})));
    EXPECT_EQ(o.events,
              (std::vector<Event>{ev_pong(bytes("x")), ev_pong({}), ev_text("still open")}));
    EXPECT_TRUE(o.out.empty());  // no answer to a pong
    expect_open_and_quiet(o);
  }
}

// ============================================================================================
// §7.4.1 status codes

TEST(Rfc6455_7_4_1, InvalidCloseCodeGets1002) {
  for (Role role : kRoles) {
    for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " code " << code);
      Outcome o = run_chunked(scenario(role, from_peer(role, kClose, close_body(code, "r"))));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
  }
}

// ============================================================================================
// §8.1 UTF-8

const std::vector<Bytes>& invalid_utf8_samples() {
  static const std::vector<Bytes> samples = {
      {0xff},
      {'a', 0x80},                                                        // lone continuation
      {0xc0, 0x80},                                                       // overlong NUL
      {0xe0, 0x80, 0xaf},                                                 // overlong '/'
      {0xed, 0xa0, 0x80},                                                 // surrogate U+D800
      {0xf4, 0x90, 0x80, 0x80},                                           // U+110000
      {0xf5, 0x80, 0x80, 0x80},                                           // invalid lead
      {0xe2, 0x28, 0xa1},                                                 // bad continuation
      {0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,  // "κόσμε"
       0xed, 0xa0, 0x80, 'e',  'd',  'i',  't',  'e',  'd'},
      {'a', 'b', 0xe2, 0x82},  // truncated at the end
      {0xf0, 0x9f, 0x98},      // truncated 4-byte sequence
  };
  return samples;
}

TEST(Rfc6455_8_1, InvalidUtf8TextGets1007) {
  for (Role role : kRoles) {
    for (const auto& bad : invalid_utf8_samples()) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " " << hex(bad));
      {  // one frame
        Outcome o = run_chunked(scenario(role, from_peer(role, kText, bad)));
        expect_failed(o, 1007, role);
        EXPECT_EQ(o.events.size(), 1u);
      }
      // split into two fragments at every position
      for (std::size_t cut = 0; cut <= bad.size(); ++cut) {
        SCOPED_TRACE(testing::Message() << "fragmented at " << cut);
        std::span<const uint8_t> b(bad);
        Outcome o = run_chunked(scenario(role, cat({from_peer(role, kText, b.first(cut), false),
                                                    from_peer(role, kCont, b.subspan(cut))})));
        expect_failed(o, 1007, role);
        EXPECT_EQ(o.events.size(), 1u);
      }
    }
  }
}

TEST(Rfc6455_8_1, ValidUtf8SplitAnywhereAccepted) {
  const std::string text = "a\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbfz";
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Bytes t = bytes(text);
    std::span<const uint8_t> b(t);
    for (std::size_t cut = 0; cut <= t.size(); ++cut) {
      SCOPED_TRACE(cut);
      Outcome o = run_chunked(scenario(role, cat({from_peer(role, kText, b.first(cut), false),
                                                  from_peer(role, kCont, b.subspan(cut))})));
      EXPECT_EQ(o.events, std::vector<Event>{ev_text(text)});
      expect_open_and_quiet(o);
    }
    Outcome o = run_chunked(scenario(role, from_peer(role, kText, text)));
    EXPECT_EQ(o.events, std::vector<Event>{ev_text(text)});
  }
}

TEST(Rfc6455_8_1, InvalidUtf8FailsFastMidFragment) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    {  // first fragment carries the bad byte; the final fragment never arrives
      Outcome o =
          run_chunked(scenario(role, from_peer(role, kText, Bytes{'o', 'k', 0xff, 'x'}, false)));
      expect_failed(o, 1007, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
    {  // a sequence opened in fragment 1 and broken in fragment 2 (not final)
      Outcome o = run_chunked(scenario(role, cat({from_peer(role, kText, Bytes{'a', 0xe2}, false),
                                                  from_peer(role, kCont, Bytes{0x28}, false)})));
      expect_failed(o, 1007, role);
    }
    {  // a declared 200-byte frame of which only 4 bytes arrived: already invalid
      Bytes full = from_peer(role, kText, cat({Bytes{'a', 'b', 0xc0, 0x80}, repeat_pattern(196)}));
      const std::size_t header = role == Role::server ? 8 : 4;
      Bytes partial(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(header + 4));
      Outcome o = run_chunked(scenario(role, partial));
      expect_failed(o, 1007, role);
    }
    {  // with the final fragment present: still exactly one close, no message
      Outcome o = run_chunked(
          scenario(role, cat({from_peer(role, kText, Bytes{0xff}, false),
                              from_peer(role, kCont, "tail"), from_peer(role, kPing, "p")})));
      expect_failed(o, 1007, role);
      EXPECT_EQ(o.events.size(), 1u);
      EXPECT_EQ(decode_frames(o.out).size(), 1u);
    }
  }
}

TEST(Rfc6455_8_1, BinaryIsNotUtf8Checked) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes b = {0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80};
    Outcome o = run_chunked(scenario(role, from_peer(role, kBinary, b)));
    EXPECT_EQ(o.events, std::vector<Event>{ev_binary(b)});
    expect_open_and_quiet(o);
  }
}

// ============================================================================================
// §10.4 limits (close code 1009, §7.4.1)

TEST(Rfc6455_10_4, MessageOverMaxGets1009) {
  for (Role role : kRoles) {
    for (uint8_t op : {kText, kBinary}) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " op " << int{op});
      const Bytes a = bytes(std::string(101, 'a'));
      {  // one frame over max_frame
        Scenario s = scenario(role, from_peer(role, op, a));
        s.max_frame = 100;
        s.max_message = 150;
        Outcome o = run_chunked(s);
        expect_failed(o, 1009, role);
        EXPECT_EQ(o.events.size(), 1u);
      }
      {  // fragments each within max_frame, total over max_message
        Scenario s = scenario(role, cat({from_peer(role, op, std::span(a).first(100), false),
                                         from_peer(role, kPing, "p"),
                                         from_peer(role, kCont, std::span(a).first(51))}));
        s.max_frame = 100;
        s.max_message = 150;
        Outcome o = run_chunked(s);
        expect_failed(o, 1009, role);
        EXPECT_EQ(o.events.size(), 2u);  // the ping, then the close
      }
      {  // judged on the header alone: no payload needs to arrive
        Bytes full = from_peer(role, op, a);
        const std::size_t header = role == Role::server ? 8 : 4;
        Scenario s = scenario(role, Bytes(full.begin(), full.begin() + header));
        s.max_frame = 100;
        Outcome o = run_chunked(s);
        expect_failed(o, 1009, role);
      }
    }
  }
}

TEST(Rfc6455_10_4, MessageAtLimitsAccepted) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes a = bytes(std::string(150, 'a'));
    Scenario s = scenario(role, cat({from_peer(role, kText, std::span(a).first(100)),
                                     from_peer(role, kText, std::span(a).first(100), false),
                                     from_peer(role, kCont, std::span(a).first(50))}));
    s.max_frame = 100;
    s.max_message = 150;
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events,
              (std::vector<Event>{ev_text(std::string(100, 'a')), ev_text(std::string(150, 'a'))}));
    expect_open_and_quiet(o);
  }
}

TEST(Rfc6455_10_4, DefaultLimitRejectsHugeHeaders) {
  // Default max_frame/max_message are 16 MiB; only headers are sent.
  const std::vector<Bytes> headers = {
      {0x82, 0xff, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01},              // 16 MiB + 1
      {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},  // 2^63 - 1
  };
  for (Bytes h : headers) {
    SCOPED_TRACE(hex(h));
    h.insert(h.end(), kKey.begin(), kKey.end());
    h.push_back(0x00);
    Outcome o = run_chunked(scenario(Role::server, h));
    expect_failed(o, 1009, Role::server);
  }
}

TEST(Rfc6455_10_4, SixteenMiBMessageAtDefaultLimitAccepted) {
  const std::size_t n = 16u << 20;
  const Bytes payload = repeat_pattern(n, 5);
  std::span<const uint8_t> p(payload);
  // Two fragments, the second carrying the last 16 MiB - 3 bytes, plus a ping in between.
  Scenario s = scenario(Role::server, cat({masked(kBinary, p.first(3), false), masked(kPing, "p"),
                                           masked(kCont, p.subspan(3))}));
  Outcome o = run_chunked(s, huge_chunk_sizes(s.input.size()));
  ASSERT_EQ(o.events.size(), 2u);
  EXPECT_EQ(o.events[0], ev_ping(bytes("p")));
  EXPECT_EQ(o.events[1].kind, Kind::message);
  EXPECT_TRUE(o.events[1] == ev_binary(payload)) << "16 MiB message differs";
  EXPECT_EQ(o.out, (Bytes{0x8a, 0x01, 'p'}));
}

// ============================================================================================
// §7.1.7 Fail the WebSocket Connection

TEST(Rfc6455_7_1_7, NothingProcessedAfterFailure) {
  struct Case {
    Bytes bad;
    uint16_t code;
  };
  const std::vector<Case> cases = {
      {unmasked(kText, "unmasked"), 1002},        {masked(0x3, "reserved"), 1002},
      {masked(kText, "x", true, 0x40), 1002},     {masked(kText, Bytes{0xff}), 1007},
      {masked(kPing, repeat_pattern(126)), 1002}, {masked(kClose, close_body(1006)), 1002},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(hex(c.bad));
    Scenario s =
        scenario(Role::server,
                 cat({masked(kText, "before"), c.bad, masked(kPing, "p"), masked(kText, "after"),
                      masked(kClose, close_body(1000)), masked(kText, Bytes{0xff})}));
    s.eof_after = true;
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events.size(), 2u);
    EXPECT_EQ(o.events.front(), ev_text("before"));
    expect_failed(o, c.code, Role::server);
    EXPECT_EQ(decode_frames(o.out).size(), 1u);  // the close frame only: no pong, no echo
  }
}

TEST(Rfc6455_7_1_7, ConnectionUnusableAfterFailure) {
  Live l(Role::server);
  l.open();
  l.feed(unmasked(kText, "x"));
  ASSERT_EQ(l.conn->state(), State::closed);
  ASSERT_TRUE(l.conn->should_close_transport());
  const Bytes out = l.take_out();
  EXPECT_FALSE(l.conn->send_text("x"));
  EXPECT_FALSE(l.conn->ping());
  EXPECT_FALSE(l.conn->close());
  l.feed(masked(kPing, "p"));
  l.conn->receive_eof();
  l.conn->fail(1011, "again", Cause::protocol_error);
  EXPECT_TRUE(l.take_out().empty());
  ASSERT_EQ(l.rec.events.size(), 1u);
  EXPECT_EQ(l.rec.events[0].code, 1002);
  auto frames = decode_frames(out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(parse_close(frames[0])->code, 1002);
}

// ============================================================================================
// §7.1.2 / §7.1.4 closing handshake, §7.1.5 close code when there was no close frame

TEST(Rfc6455_7_1_2, LocalCloseThenPeerCloseIsClean) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Scenario s = scenario(role, from_peer(role, kClose, close_body(1000, "ack")));
    s.before = [](Connection& c) {
      ASSERT_TRUE(c.close(1000, "done"));
      EXPECT_EQ(c.state(), State::closing);
      EXPECT_FALSE(c.should_close_transport());
    };
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events, std::vector<Event>{ev_close(1000, "ack", true, Cause::local_close)});
    EXPECT_EQ(o.state, State::closed);
    EXPECT_TRUE(o.close_transport);
    // Only our close frame: the peer's close is not answered a second time.
    if (role == Role::server) {
      EXPECT_EQ(o.out, (Bytes{0x88, 0x06, 0x03, 0xe8, 'd', 'o', 'n', 'e'}));
    } else {
      EXPECT_EQ(o.out,
                (Bytes{0x88, 0x86, 0x10, 0x11, 0x12, 0x13, 0x13, 0xf9, 0x76, 0x7c, 0x7e, 0x74}));
    }
  }
}

TEST(Rfc6455_7_1_2, DataStillReceivedWhileClosing) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    Scenario s = scenario(role, cat({from_peer(role, kText, "in flight"),
                                     from_peer(role, kClose, close_body(1001))}));
    s.before = [](Connection& c) { ASSERT_TRUE(c.close(4000, "app")); };
    Outcome o = run_chunked(s);
    EXPECT_EQ(o.events, (std::vector<Event>{ev_text("in flight"),
                                            ev_close(1001, "", true, Cause::local_close)}));
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(parse_close(frames[0])->code, 4000);
  }
}

TEST(Rfc6455_7_1_2, LocalCloseWithoutCodeSendsEmptyBody) {
  Live l(Role::server);
  l.open();
  ASSERT_TRUE(l.conn->close(1005));
  EXPECT_EQ(l.take_out(), (Bytes{0x88, 0x00}));
  l.feed(masked(kClose, ""));
  EXPECT_EQ(l.rec.events, std::vector<Event>{ev_close(1005, "", true, Cause::local_close)});
}

TEST(Rfc6455_7_1_5, EofBeforeCloseIs1006) {
  struct Case {
    const char* name;
    Role role;
    Bytes input;
    bool local_close_first;
  };
  const std::vector<Case> cases = {
      {"server open", Role::server, {}, false},
      {"client open", Role::client, {}, false},
      {"server mid-message", Role::server, cat({masked(kText, "He", false), Bytes{0x80, 0x83}}),
       false},
      {"client mid-frame", Role::client, Bytes{0x82, 0x05, 'a', 'b'}, false},
      {"server after local close", Role::server, masked(kText, "x"), true},
      {"client after local close", Role::client, {}, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Scenario s = scenario(c.role, c.input);
    s.eof_after = true;
    if (c.local_close_first) s.before = [](Connection& conn) { ASSERT_TRUE(conn.close()); };
    Outcome o = run_chunked(s);
    ASSERT_FALSE(o.events.empty());
    const Event& last = o.events.back();
    EXPECT_EQ(last.kind, Kind::close);
    EXPECT_EQ(last.code, 1006);
    EXPECT_FALSE(last.was_clean);
    EXPECT_EQ(last.cause, Cause::network_error);
    for (std::size_t i = 0; i + 1 < o.events.size(); ++i) EXPECT_NE(o.events[i].kind, Kind::close);
    EXPECT_EQ(o.state, State::closed);
    EXPECT_TRUE(o.close_transport);
    // Nothing new is written on EOF (1006 never goes on the wire).
    for (const auto& f : decode_frames(o.out)) {
      if (f.opcode == kClose) {
        EXPECT_TRUE(c.local_close_first);
        EXPECT_EQ(parse_close(f)->code, 1000);
      }
    }
  }
}

TEST(Rfc6455_7_1_5, EofAfterCleanCloseChangesNothing) {
  Scenario s = scenario(Role::server, masked(kClose, close_body(1000)));
  s.eof_after = true;
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, std::vector<Event>{ev_close(1000, "", true, Cause::remote_close)});
}

// ============================================================================================
// §4 opening handshake through the connection

TEST(Rfc6455_4_2_Connection, ServerAnswers101AndOpens) {
  Scenario s = scenario(Role::server, bytes(kUpgradeRequest));
  s.handshake_first = false;
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, std::vector<Event>{ev_open()});
  EXPECT_EQ(str(o.out), kResponse101);
  expect_open_and_quiet(o);

  Live l(Role::server);
  EXPECT_EQ(l.conn->state(), State::connecting);
  EXPECT_FALSE(l.conn->send_text("early"));
  l.open();
  EXPECT_EQ(l.conn->path(), "/chat");
  EXPECT_EQ(l.conn->subprotocol(), "");
}

TEST(Rfc6455_4_2_Connection, FramesInSameReadAsHeadAreProcessed) {
  Scenario s = scenario(Role::server, cat({bytes(kUpgradeRequest), kMaskedHello, masked(kPing, "p"),
                                           masked(kText, "bye", false)}));
  s.handshake_first = false;
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_open(), ev_text("Hello"), ev_ping(bytes("p"))}));
  EXPECT_EQ(o.out, cat({bytes(kResponse101), {0x8a, 0x01, 'p'}}));
  expect_open_and_quiet(o);
}

TEST(Rfc6455_4_2_Connection, ServerSelectsSubprotocol) {
  ServerHandshakeConfig cfg;
  cfg.subprotocols = {"v2.chat", "chat"};
  std::string req(kUpgradeRequest);
  req.insert(req.size() - 2, "Sec-WebSocket-Protocol: chat, v2.chat\r\n");
  Scenario s = scenario(Role::server, bytes(req));
  s.handshake_first = false;
  s.server = &cfg;
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, std::vector<Event>{ev_open()});
  std::string want(kResponse101);
  want.insert(want.size() - 2, "Sec-WebSocket-Protocol: v2.chat\r\n");
  EXPECT_EQ(str(o.out), want);
}

TEST(Rfc6455_4_2_Connection, BadRequestGetsHttpErrorAndClose) {
  struct Case {
    const char* name;
    std::string request;
    std::string_view status_line;
  };
  auto replace = [](std::string s, std::string_view from, std::string_view to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const std::string good(kUpgradeRequest);
  const std::vector<Case> cases = {
      {"version 8", replace(good, "Version: 13", "Version: 8"), "HTTP/1.1 426 "},
      {"no key", replace(good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
       "HTTP/1.1 400 "},
      {"short key", replace(good, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), "HTTP/1.1 400 "},
      {"POST", replace(good, "GET", "POST"), "HTTP/1.1 405 "},
      {"no Host", replace(good, "Host: server.example.com\r\n", ""), "HTTP/1.1 400 "},
      {"Connection without upgrade", replace(good, "Connection: Upgrade", "Connection: close"),
       "HTTP/1.1 400 "},
      {"malformed header", replace(good, "Host: ", "Host "), "HTTP/1.1 400 "},
      {"HTTP/2.0", replace(good, "HTTP/1.1", "HTTP/2.0"), "HTTP/1.1 505 "},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    // Frames after the bad head must be ignored.
    Scenario s = scenario(Role::server, cat({bytes(c.request), kMaskedHello}));
    s.handshake_first = false;
    Outcome o = run_chunked(s);
    EXPECT_EQ(str(o.out).substr(0, c.status_line.size()), c.status_line) << str(o.out);
    EXPECT_EQ(o.state, State::closed);
    EXPECT_TRUE(o.close_transport);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::close);
    EXPECT_EQ(o.events[0].code, 1006);
    EXPECT_FALSE(o.events[0].was_clean);
    EXPECT_EQ(o.events[0].cause, Cause::handshake_failed);
  }
}

TEST(Rfc6455_4_2_Connection, VersionMismatchAdvertises13) {
  std::string req(kUpgradeRequest);
  req.replace(req.find("Version: 13"), 11, "Version: 8");
  Live l(Role::server);
  l.feed(bytes(req));
  const std::string out = str(l.take_out());
  EXPECT_NE(out.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << out;
}

TEST(Rfc6455_4_2_Connection, PlainGetGoesToOnHttpRequest) {
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
  Scenario s =
      scenario(Role::server, bytes("GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\n"));
  s.handshake_first = false;
  s.http_reply = reply;
  Outcome o = run_chunked(s);
  Event want;
  want.kind = Kind::http_request;
  want.data = bytes("GET /x");
  EXPECT_EQ(o.events, std::vector<Event>{want});  // no on_open, no on_close
  EXPECT_EQ(str(o.out), reply);
  EXPECT_EQ(o.state, State::closed);
  EXPECT_TRUE(o.close_transport);
}

TEST(Rfc6455_4_2_Connection, PlainGetDefaultAnswerIs426) {
  Scenario s = scenario(Role::server, bytes("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"));
  s.handshake_first = false;
  Outcome o = run_chunked(s);
  ASSERT_EQ(o.events.size(), 1u);
  EXPECT_EQ(str(o.out).substr(0, 13), "HTTP/1.1 426 ");
  EXPECT_NE(str(o.out).find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_TRUE(o.close_transport);
}

TEST(Rfc6455_4_1_Connection, StartClientWritesRequest) {
  ConnectionConfig cfg;
  cfg.role = Role::client;
  Recorder rec;
  CountingRandom rng;
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  EXPECT_TRUE(conn.out().empty());
  conn.start_client(rfc_client_request());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(conn.out().data()), conn.out().size()),
            kUpgradeRequest);
  EXPECT_EQ(conn.state(), State::connecting);
  EXPECT_EQ(conn.path(), "/chat");
  EXPECT_FALSE(conn.send_text("early"));
  EXPECT_FALSE(conn.ping());
  EXPECT_FALSE(conn.close());
  EXPECT_EQ(conn.out().size(), kUpgradeRequest.size());
  EXPECT_TRUE(rec.events.empty());
}

TEST(Rfc6455_4_1_Connection, Correct101Opens) {
  Scenario s = scenario(Role::client,
                        cat({bytes(kResponse101), unmasked(kText, "Hi"), unmasked(kPing, "p")}));
  s.handshake_first = false;
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_open(), ev_text("Hi"), ev_ping(bytes("p"))}));
  // The request from start_client(), then the masked pong.
  EXPECT_EQ(o.out, cat({bytes(kUpgradeRequest), {0x8a, 0x81, 0x10, 0x11, 0x12, 0x13, 'p' ^ 0x10}}));
  expect_open_and_quiet(o);
}

TEST(Rfc6455_4_1_Connection, ClientAcceptsOfferedSubprotocol) {
  ConnectionConfig cfg;
  cfg.role = Role::client;
  Recorder rec;
  CountingRandom rng;
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  auto req = rfc_client_request();
  req.subprotocols = {"chat", "superchat"};
  conn.start_client(req);
  std::string resp(kResponse101);
  resp.insert(resp.size() - 2, "Sec-WebSocket-Protocol: superchat\r\n");
  Bytes in = bytes(resp);
  conn.receive(in);
  EXPECT_EQ(conn.state(), State::open);
  EXPECT_EQ(conn.subprotocol(), "superchat");
}

TEST(Rfc6455_4_1_Connection, BadResponseFailsHandshake) {
  auto replace = [](std::string s, std::string_view from, std::string_view to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const std::string good(kResponse101);
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"wrong accept", replace(good, kRfcAccept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")},
      {"no accept", replace(good, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "")},
      {"status 200", replace(good, "101 Switching Protocols", "200 OK")},
      {"no Upgrade", replace(good, "Upgrade: websocket\r\n", "")},
      {"no Connection", replace(good, "Connection: Upgrade\r\n", "")},
      {"unoffered subprotocol",
       replace(good, "\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n")},
      {"unoffered extension",
       replace(good, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")},
      {"malformed", "HTTP/1.1 101\r\nbroken header\r\n\r\n"},
  };
  for (const auto& [name, response] : cases) {
    SCOPED_TRACE(name);
    Scenario s = scenario(Role::client, cat({bytes(response), unmasked(kText, "ignored")}));
    s.handshake_first = false;
    Outcome o = run_chunked(s);
    ASSERT_EQ(o.events.size(), 1u) << testing::PrintToString(o);
    EXPECT_EQ(o.events[0].kind, Kind::close);
    EXPECT_EQ(o.events[0].code, 1006);
    EXPECT_FALSE(o.events[0].was_clean);
    EXPECT_EQ(o.events[0].cause, Cause::handshake_failed);
    EXPECT_EQ(str(o.out), kUpgradeRequest);  // nothing after the request
    EXPECT_EQ(o.state, State::closed);
    EXPECT_TRUE(o.close_transport);
  }
}

TEST(Rfc6455_4_1_Connection, EofDuringHandshakeIsHandshakeFailed) {
  Scenario s = scenario(Role::client, bytes("HTTP/1.1 101 Switching"));
  s.handshake_first = false;
  s.eof_after = true;
  Outcome o = run_chunked(s);
  ASSERT_EQ(o.events.size(), 1u);
  EXPECT_EQ(o.events[0].code, 1006);
  EXPECT_EQ(o.events[0].cause, Cause::handshake_failed);
  EXPECT_TRUE(o.close_transport);
}

// ============================================================================================
// Connection API (not RFC MUSTs: local misuse and re-entrancy)

TEST(ConnectionApi, CloseWithInvalidCodeReturnsFalse) {
  struct Case {
    uint16_t code;
    std::string reason;
  };
  const std::vector<Case> invalid = {
      {0, ""},        {999, ""},  {1004, ""}, {1006, ""},       {1015, ""},
      {1016, ""},     {2999, ""}, {5000, ""}, {1005, "reason"}, {1000, std::string(124, 'r')},
      {1000, "\xff"},
  };
  for (const auto& c : invalid) {
    SCOPED_TRACE(testing::Message() << c.code << " reason size " << c.reason.size());
    for (Role role : kRoles) {
      Live l(role);
      l.open();
      EXPECT_FALSE(l.conn->close(c.code, c.reason));
      EXPECT_EQ(l.conn->state(), State::open);
      EXPECT_TRUE(l.conn->out().empty());
      EXPECT_TRUE(l.conn->send_text("still open"));
    }
  }
  Live l(Role::server);
  l.open();
  EXPECT_TRUE(l.conn->close(4999, std::string(123, 'r')));
  auto frames = decode_frames(l.take_out());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(parse_close(frames[0])->code, 4999);
  EXPECT_EQ(parse_close(frames[0])->reason, std::string(123, 'r'));
}

TEST(ConnectionApi, SendWhenNotOpenReturnsFalse) {
  auto expect_all_refused = [](Connection& c) {
    const std::size_t before = c.out().size();
    EXPECT_FALSE(c.send_text("x"));
    EXPECT_FALSE(c.send(Opcode::binary, Connection::as_bytes("x")));
    EXPECT_FALSE(c.send(Opcode::continuation, {}, true));
    EXPECT_FALSE(c.ping());
    EXPECT_FALSE(c.pong());
    EXPECT_FALSE(c.close());
    EXPECT_EQ(c.out().size(), before);
  };
  {
    SCOPED_TRACE("server connecting");
    Live l(Role::server);
    expect_all_refused(*l.conn);
  }
  {
    SCOPED_TRACE("client connecting");
    Live l(Role::client);
    expect_all_refused(*l.conn);
  }
  {
    SCOPED_TRACE("closing");
    Live l(Role::server);
    l.open();
    ASSERT_TRUE(l.conn->close());
    expect_all_refused(*l.conn);
  }
  {
    SCOPED_TRACE("closed by peer");
    Live l(Role::client);
    l.open();
    l.feed(unmasked(kClose, ""));
    expect_all_refused(*l.conn);
  }
  {
    SCOPED_TRACE("closed by EOF");
    Live l(Role::server);
    l.open();
    l.conn->receive_eof();
    expect_all_refused(*l.conn);
    EXPECT_TRUE(l.conn->out().empty());
  }
  {
    SCOPED_TRACE("handshake rejected");
    Live l(Role::server);
    l.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
    expect_all_refused(*l.conn);
  }
}

TEST(ConnectionApi, ControlPayloadOver125Refused) {
  Live l(Role::server);
  l.open();
  const Bytes p = repeat_pattern(126);
  EXPECT_FALSE(l.conn->ping(p));
  EXPECT_FALSE(l.conn->pong(p));
  EXPECT_TRUE(l.conn->out().empty());
  EXPECT_TRUE(l.conn->ping(std::span(p).first(125)));
}

TEST(ConnectionApi, OutputStreamSurvivesPartialConsumption) {
  // The transport may write out() a little at a time while more frames are queued.
  Live l(Role::server);
  l.open();
  Bytes want, got;
  for (int i = 0; i < 200; ++i) {
    const Bytes payload =
        repeat_pattern(static_cast<std::size_t>(i * 37 % 300), static_cast<uint8_t>(i));
    ASSERT_TRUE(l.conn->send(Opcode::binary, payload));
    want = cat({want, unmasked(kBinary, payload)});
    const std::size_t n =
        std::min<std::size_t>(l.conn->out().size(), static_cast<std::size_t>(i * 53 % 401));
    got.insert(got.end(), l.conn->out().data(), l.conn->out().data() + n);
    l.conn->consume_out(n);
  }
  got = cat({got, l.take_out()});
  EXPECT_EQ(got, want);
}

TEST(ConnectionApi, FragmentedSend) {
  Live l(Role::server);
  l.open();
  ASSERT_TRUE(l.conn->send(Opcode::text, Connection::as_bytes("Hel"), false));
  ASSERT_TRUE(l.conn->send(Opcode::continuation, Connection::as_bytes("lo"), true));
  EXPECT_EQ(l.take_out(), (Bytes{0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'}));
}

// Local misuse is refused (returns false, writes nothing) instead of putting an invalid frame
// on the wire: control opcodes through send() (§5.5) and fragments out of order (§5.4).
TEST(ConnectionApi, SendRefusesControlOpcodesAndOutOfOrderFragments) {
  Live l(Role::server);
  l.open();
  EXPECT_FALSE(l.conn->send(Opcode::ping, Connection::as_bytes("p")));
  EXPECT_FALSE(l.conn->send(Opcode::close, {}));
  EXPECT_FALSE(l.conn->send(Opcode::continuation, Connection::as_bytes("x")));
  EXPECT_TRUE(l.conn->out().empty());
  ASSERT_TRUE(l.conn->send(Opcode::binary, Connection::as_bytes("a"), false));
  EXPECT_FALSE(l.conn->send(Opcode::text, Connection::as_bytes("b")));  // message in progress
  EXPECT_TRUE(l.conn->ping(Connection::as_bytes("ok")));  // control frames may interleave
  EXPECT_TRUE(l.conn->send(Opcode::continuation, Connection::as_bytes("c"), true));
  EXPECT_TRUE(l.conn->send(Opcode::text, Connection::as_bytes("d")));
  EXPECT_EQ(l.take_out(), cat({unmasked(kBinary, "a", false), unmasked(kPing, "ok"),
                               unmasked(kCont, "c"), unmasked(kText, "d")}));
}

TEST(ConnectionApi, FailSendsCodeAndTruncatesReasonOnUtf8Boundary) {
  Live l(Role::server);
  l.open();
  std::string reason(122, 'r');
  reason += "\xe2\x82\xac";  // a 3-byte character straddling the 123-byte limit
  l.conn->fail(1008, reason, Cause::protocol_error);
  auto frames = decode_frames(l.take_out());
  ASSERT_EQ(frames.size(), 1u);
  auto body = parse_close(frames[0]);
  ASSERT_TRUE(body.has_value()) << hex(frames[0].payload);
  EXPECT_EQ(body->code, 1008);
  EXPECT_EQ(body->reason, std::string(122, 'r'));
  ASSERT_EQ(l.rec.events.size(), 1u);
  EXPECT_EQ(l.rec.events[0], ev_close(1008, reason, false, Cause::protocol_error));
}

TEST(ConnectionReentrancy, EchoFromOnMessage) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes bin = repeat_pattern(300, 1);
    Scenario s = scenario(
        role, cat({from_peer(role, kText, "Hello"), from_peer(role, kBinary, bin),
                   from_peer(role, kText, "frag", false), from_peer(role, kCont, "ment")}));
    s.hook = [](Connection& c, const Event& e) {
      if (e.kind == Kind::message) {
        EXPECT_TRUE(c.send(e.type, e.data));
      }
    };
    Outcome o = run_chunked(s);
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].payload, bytes("Hello"));
    EXPECT_EQ(frames[1].payload, bin);
    EXPECT_EQ(frames[1].opcode, kBinary);
    EXPECT_EQ(frames[2].payload, bytes("fragment"));
    for (const auto& f : frames) EXPECT_EQ(f.masked, role == Role::client);
    if (role == Role::server) {
      EXPECT_EQ(o.out, cat({unmasked(kText, "Hello"), unmasked(kBinary, bin),
                            unmasked(kText, "fragment")}));
    }
  }
}

TEST(ConnectionReentrancy, CloseFromOnMessage) {
  Scenario s = scenario(Role::server, cat({masked(kText, "bye"), masked(kText, "more"),
                                           masked(kClose, close_body(1000))}));
  s.hook = [](Connection& c, const Event& e) {
    if (e == ev_text("bye")) {
      EXPECT_TRUE(c.close(1000, "bye"));
    }
  };
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_text("bye"), ev_text("more"),
                                          ev_close(1000, "", true, Cause::local_close)}));
  EXPECT_EQ(o.out, (Bytes{0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'}));
}

TEST(ConnectionReentrancy, SendFromOnOpen) {
  Scenario s = scenario(Role::server, cat({bytes(kUpgradeRequest), masked(kText, "x")}));
  s.handshake_first = false;
  s.hook = [](Connection& c, const Event& e) {
    if (e.kind == Kind::open) {
      EXPECT_TRUE(c.send_text("hi"));
    }
  };
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_open(), ev_text("x")}));
  EXPECT_EQ(o.out, cat({bytes(kResponse101), {0x81, 0x02, 'h', 'i'}}));
}

TEST(ConnectionReentrancy, FailFromOnPing) {
  Scenario s = scenario(Role::server, cat({masked(kPing, "p"), masked(kText, "ignored")}));
  s.hook = [](Connection& c, const Event& e) {
    if (e.kind == Kind::ping) c.fail(1008, "policy", Cause::protocol_error);
  };
  Outcome o = run_chunked(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(bytes("p")),
                                          ev_close(1008, "policy", false, Cause::protocol_error)}));
  EXPECT_EQ(o.out, cat({Bytes{0x8a, 0x01, 'p'}, unmasked(kClose, close_body(1008, "policy"))}));
}

}  // namespace
}  // namespace tether_conn_test

// ============================================================================================
namespace tether_conn_test {
namespace {

// Control-frame priority under backpressure (liveness): a pong answering the peer's ping goes
// out at the first frame boundary, ahead of queued application data, never inside a frame.

Bytes take_n(Live& l, std::size_t n) {
  Bytes b(l.conn->out().data(), l.conn->out().data() + n);
  l.conn->consume_out(n);
  return b;
}

TEST(ControlPriority, PongGoesAheadOfQueuedDataWhenBlocked) {
  Live l(Role::server);
  l.open();
  const Bytes a = repeat_pattern(100000, 1), b = repeat_pattern(10, 2);
  ASSERT_TRUE(l.conn->send(Opcode::binary, a));
  ASSERT_TRUE(l.conn->send(Opcode::binary, b));
  l.conn->set_transport_blocked(true);
  l.feed(masked(kPing, "x"));
  EXPECT_EQ(l.take_out(), cat({unmasked(kPong, "x"), unmasked(kBinary, a), unmasked(kBinary, b)}));
}

TEST(ControlPriority, PongWaitsForThePartlyWrittenFrameToEnd) {
  Live l(Role::server);
  l.open();
  const Bytes a = repeat_pattern(100000, 1), b = repeat_pattern(10, 2);
  ASSERT_TRUE(l.conn->send(Opcode::binary, a));
  ASSERT_TRUE(l.conn->send(Opcode::binary, b));
  const Bytes wire_a = unmasked(kBinary, a);
  Bytes first = take_n(l, 1000);  // the socket took 1000 bytes of frame A, then EAGAIN
  l.conn->set_transport_blocked(true);
  l.feed(masked(kPing, "x"));
  l.feed(masked(kPing, "y"));
  Bytes rest = l.take_out();
  EXPECT_EQ(cat({first, rest}),
            cat({wire_a, unmasked(kPong, "y"), unmasked(kPong, "x"), unmasked(kBinary, b)}))
      << "pongs must land at A's end; each new one at the same first boundary";
}

TEST(ControlPriority, BoundarySurvivesBufferCompaction) {
  Live l(Role::server);
  l.open();
  const Bytes a = repeat_pattern(100000, 1), c = repeat_pattern(300, 3);
  ASSERT_TRUE(l.conn->send(Opcode::binary, a));
  Bytes first = take_n(l, 60000);  // past half: the next append compacts the buffer
  ASSERT_TRUE(l.conn->send(Opcode::binary, c));
  l.conn->set_transport_blocked(true);
  l.feed(masked(kPing, "z"));
  EXPECT_EQ(cat({first, l.take_out()}),
            cat({unmasked(kBinary, a), unmasked(kPong, "z"), unmasked(kBinary, c)}));
}

TEST(ControlPriority, ClientPingJumpsQueueMasked) {
  Live l(Role::client);
  l.open();
  const Bytes a = repeat_pattern(5000, 1);
  ASSERT_TRUE(l.conn->send(Opcode::binary, a));
  l.conn->set_transport_blocked(true);
  ASSERT_TRUE(l.conn->ping(bytes("hb")));
  auto frames = decode_frames(l.take_out());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].opcode, kPing);
  EXPECT_EQ(frames[0].payload, bytes("hb"));  // decode_frames unmasks
  EXPECT_EQ(frames[1].payload, a);
}

TEST(ControlPriority, NoReorderingWhenNotBlockedOrAfterClose) {
  Live l(Role::server);
  l.open();
  const Bytes a = repeat_pattern(1000, 1);
  ASSERT_TRUE(l.conn->send(Opcode::binary, a));
  l.feed(masked(kPing, "x"));  // not blocked: order kept
  ASSERT_TRUE(l.conn->close(1000, ""));
  l.conn->set_transport_blocked(true);
  l.feed(masked(kPing, "y"));  // our close is queued: the pong must follow it, not precede it
  auto frames = decode_frames(l.take_out());
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].opcode, kBinary);
  EXPECT_EQ(frames[1].opcode, kPong);
  EXPECT_EQ(frames[2].opcode, kClose);
  EXPECT_EQ(frames[3].opcode, kPong);
}

// The server's fast path for whole data frames (Connection::whole_frame_fast) against the
// general state machine: random streams of small frames, valid and not, are fed whole (the fast
// path takes every frame it can) and in every chunking (a frame split across reads always takes
// the general path); run_chunked demands the same events, output and state from all of them.
TEST(WholeFrameFastPath, RandomStreamsMatchTheGeneralPathInEveryChunking) {
  const std::array<uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d};
  for (uint32_t seed = 1; seed <= 80; ++seed) {
    std::mt19937 gen(seed);
    Scenario s;
    if (gen() % 4 == 0) s.max_frame = gen() % 2 ? 40 : 200;  // some frames over the limit: 1009
    if (gen() % 4 == 0) s.max_message = 60;
    const int frames = 1 + static_cast<int>(gen() % 6);
    for (int i = 0; i < frames; ++i) {
      // 7-bit lengths, around 125/126, 16-bit ones (up to 300), now and then a 64-bit one
      const uint32_t pick = gen() % 4;
      const std::size_t len = pick == 0                      ? 120 + gen() % 10
                              : pick == 1                    ? 126 + gen() % 175
                              : pick == 2 && gen() % 16 == 0 ? 65536 + gen() % 64
                                                             : gen() % 50;
      Bytes payload = repeat_pattern(len, static_cast<uint8_t>(seed + i));
      Bytes text(len, 'a');
      FrameOpts o;
      o.key = key;
      switch (gen() % 10) {
        case 0:
        case 1:
        case 2:
          s.input = cat({s.input, frame(kBinary, payload, o)});
          break;
        case 3:
          s.input = cat({s.input, frame(kText, text, o)});
          break;
        case 4:  // invalid UTF-8 at the end, or a truncated sequence
          if (len >= 2) {
            text[len - 1] = gen() % 2 ? 0xff : 0xe2;
            if (text[len - 1] == 0xe2) text[len - 2] = 'b';
          }
          s.input = cat({s.input, frame(kText, text, o)});
          break;
        case 5:  // unmasked: §5.1
          s.input = cat({s.input, frame(kBinary, payload, {})});
          break;
        case 6:  // RSV1 without an extension: §5.2
          o.rsv = 0x40;
          s.input = cat({s.input, frame(kBinary, payload, o)});
          break;
        case 7: {  // a fragmented message: the fast path must not take its pieces
          FrameOpts first = o;
          first.fin = false;
          s.input = cat({s.input, frame(kText, text, first), frame(kCont, text, o)});
          break;
        }
        case 8:
          if (gen() % 2) {
            s.input = cat({s.input, frame(kPing, Bytes(len % 20, 'p'), o)});
          } else if (gen() % 2) {  // a 16-bit length that fits in 7 bits: not minimal, §5.2
            Bytes f = frame(kBinary, Bytes(len % 126, 'n'), o);
            f[1] = 0x80 | 126;
            f.insert(f.begin() + 2, {0, static_cast<uint8_t>(len % 126)});
            s.input = cat({s.input, f});
          } else {  // a 64-bit length that fits in 16 bits: not minimal either
            Bytes f = frame(kBinary, Bytes(126 + len % 200, 'm'), o);  // 16-bit form
            f[1] = 0x80 | 127;
            f.insert(f.begin() + 2, {0, 0, 0, 0, 0, 0});
            s.input = cat({s.input, f});
          }
          break;
        default: {  // a continuation with no message in progress
          s.input = cat({s.input, frame(kCont, payload, o)});
          break;
        }
      }
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    run_chunked(s);
  }
}

// The fast path delivers in place what the general path delivers: whole frames echo the same
// bytes, text validated (§8.1), 7-bit and 16-bit lengths, and 64-bit ones from 65536.
TEST(WholeFrameFastPath, WholeFramesDeliverTheirPayloads) {
  Scenario s;
  s.input = cat({masked(kBinary, "\x01\x02"), masked(kText, "h\xc3\xa9llo"), masked(kBinary, ""),
                 masked(kBinary, std::string(125, 'x')), masked(kBinary, std::string(126, 'y')),
                 masked(kText, std::string(1024, 't')), masked(kBinary, repeat_pattern(65535)),
                 masked(kBinary, repeat_pattern(65536))});
  Outcome o = run_chunked(s, std::vector<std::size_t>{1, 7, 126, 1031, 4096});
  ASSERT_EQ(o.events.size(), 8u);
  EXPECT_EQ(o.events[0], ev_message(Opcode::binary, bytes("\x01\x02")));
  EXPECT_EQ(o.events[1], ev_message(Opcode::text, bytes("h\xc3\xa9llo")));
  EXPECT_EQ(o.events[2], ev_message(Opcode::binary, Bytes{}));
  EXPECT_EQ(o.events[3], ev_message(Opcode::binary, Bytes(125, 'x')));
  EXPECT_EQ(o.events[4], ev_message(Opcode::binary, Bytes(126, 'y')));
  EXPECT_EQ(o.events[5], ev_message(Opcode::text, Bytes(1024, 't')));
  EXPECT_EQ(o.events[6], ev_message(Opcode::binary, repeat_pattern(65535)));
  EXPECT_EQ(o.events[7], ev_message(Opcode::binary, repeat_pattern(65536)));
  EXPECT_EQ(o.state, State::open);
}

// ---- Connection::frame_in_place: a reply framed in the receive buffer (zero-copy echo)

// A server connection past the RFC handshake whose message callback runs `reply`.
struct InPlaceServer final : tether::protocol::Handler {
  tether::loop::BufferPools pools;
  ConnectionConfig cfg;
  std::unique_ptr<Connection> conn;
  std::function<void(Connection&, Opcode, std::span<const uint8_t>)> reply;
  int messages = 0;
  explicit InPlaceServer(bool with_pools = true) {
    cfg.role = Role::server;
    if (with_pools) cfg.pools = &pools;
    conn = std::make_unique<Connection>(cfg, *this);
    Bytes hs = bytes(kUpgradeRequest);
    conn->receive(hs);
    EXPECT_EQ(conn->state(), State::open);
    conn->consume_out(conn->out().size());
  }
  void on_message(Opcode type, std::span<const uint8_t> data) override {
    ++messages;
    if (reply) reply(*conn, type, data);
  }
  void on_close(const CloseInfo&) override {}
  Bytes out() const { return Bytes(conn->out().data(), conn->out().data() + conn->out().size()); }
};

// The reply's frame is the server frame send() would queue (§5.2, unmasked §5.1), lying in the
// received bytes: its header where the received header was, its payload the received payload,
// untouched. Only the last frame of a read qualifies (a reply to an earlier one would be written
// on its own instead of with the others), only once, and only with nothing queued before it.
TEST(FrameInPlace, TheLastFrameOfAReadIsFramedWhereItLies) {
  for (std::size_t len : {0u, 5u, 125u, 126u, 1024u, 65535u, 65536u, 200000u}) {
    SCOPED_TRACE("payload " + std::to_string(len));
    InPlaceServer srv;
    const Bytes payload = repeat_pattern(len, 3);
    Bytes input = cat({masked(kText, "first"), masked(kBinary, payload)});
    std::vector<Bytes> framed;
    srv.reply = [&](Connection& c, Opcode type, std::span<const uint8_t> data) {
      auto f = c.frame_in_place(type, data);
      if (f.empty()) {
        framed.emplace_back();
        return;
      }
      // In the input, right in front of the payload, which is unchanged.
      EXPECT_GE(f.data(), input.data());
      EXPECT_EQ(f.data() + f.size(), data.data() + data.size());
      EXPECT_TRUE(std::equal(data.begin(), data.end(), payload.begin(), payload.end()));
      framed.emplace_back(f.begin(), f.end());
      EXPECT_TRUE(c.frame_in_place(type, data).empty()) << "twice";
    };
    srv.conn->receive(input);
    ASSERT_EQ(framed.size(), 2u);
    EXPECT_TRUE(framed[0].empty()) << "not the last frame of its read";
    EXPECT_EQ(framed[1], unmasked(kBinary, payload));
    EXPECT_TRUE(srv.out().empty());
  }
}

TEST(FrameInPlace, OnlyForThatPayloadWithNothingQueuedAhead) {
  const Bytes frame_bytes = masked(kBinary, std::string(200, 'q'));
  auto try_reply =
      [&](std::function<std::span<const uint8_t>(Connection&, std::span<const uint8_t>)> how) {
        InPlaceServer srv;
        std::optional<Bytes> got;
        srv.reply = [&](Connection& c, Opcode, std::span<const uint8_t> data) {
          auto f = how(c, data);
          got = Bytes(f.begin(), f.end());
        };
        Bytes input = frame_bytes;
        srv.conn->receive(input);
        EXPECT_TRUE(got.has_value());
        return got.value_or(Bytes{1});
      };
  // A prefix of the payload (same start) is fine; anything else is not.
  EXPECT_EQ(
      try_reply([](Connection& c, auto d) { return c.frame_in_place(Opcode::text, d.first(10)); }),
      unmasked(kText, std::string(10, 'q')));
  EXPECT_TRUE(try_reply([](Connection& c, auto d) {
                return c.frame_in_place(Opcode::binary, d.subspan(1));
              }).empty());
  const Bytes copy(200, 'q');
  EXPECT_TRUE(try_reply([&](Connection& c, auto) {
                return c.frame_in_place(Opcode::binary, copy);
              }).empty());
  // Something queued first (a pong, another message): the reply must queue behind it.
  EXPECT_TRUE(try_reply([](Connection& c, auto d) {
                c.pong();
                return c.frame_in_place(Opcode::binary, d);
              }).empty());
  // Control frames have their own calls; inside an outgoing fragmented message, no.
  EXPECT_TRUE(try_reply([](Connection& c, auto d) {
                return c.frame_in_place(Opcode::ping, d.first(5));
              }).empty());
  EXPECT_TRUE(try_reply([](Connection& c, auto d) {
                c.send(Opcode::text, bytes("a"), /*fin=*/false);
                c.consume_out(c.out().size());
                return c.frame_in_place(Opcode::binary, d);
              }).empty());
  // Closing: nothing more is sent.
  EXPECT_TRUE(try_reply([](Connection& c, auto d) {
                c.close(1000);
                c.consume_out(c.out().size());
                return c.frame_in_place(Opcode::binary, d);
              }).empty());
  // After the callback the bytes are no longer lendable.
  InPlaceServer srv;
  std::span<const uint8_t> kept;
  srv.reply = [&](Connection&, Opcode, std::span<const uint8_t> d) { kept = d; };
  Bytes input = frame_bytes;
  srv.conn->receive(input);
  EXPECT_TRUE(srv.conn->frame_in_place(Opcode::binary, kept).empty());
}

// The general path (a frame split across reads, a fragmented message, a client connection)
// never lends: its payload may not have a header's room in front of it.
TEST(FrameInPlace, NeverFromTheGeneralPath) {
  InPlaceServer srv;
  int lent = 0;
  srv.reply = [&](Connection& c, Opcode type, std::span<const uint8_t> d) {
    lent += !c.frame_in_place(type, d).empty();
  };
  Bytes split = masked(kBinary, std::string(300, 's'));
  srv.conn->receive(std::span<uint8_t>(split).first(100));
  srv.conn->receive(std::span<uint8_t>(split).subspan(100));
  Bytes fragmented = cat({masked(kText, "ab", false), masked(kCont, "cd")});
  srv.conn->receive(fragmented);
  Bytes big = masked(kBinary, repeat_pattern(70000));  // its header split across reads
  srv.conn->receive(std::span<uint8_t>(big).first(5));
  srv.conn->receive(std::span<uint8_t>(big).subspan(5));
  EXPECT_EQ(srv.messages, 3);
  EXPECT_EQ(lent, 0);
}

// A reply the transport took only in part: the rest is queued as bytes no priority ping or pong
// may go ahead of, and the stream stays well framed.
TEST(FrameInPlace, TheUnwrittenTailQueuesAheadOfPriorityFrames) {
  InPlaceServer srv;
  Bytes wire;
  srv.reply = [&](Connection& c, Opcode type, std::span<const uint8_t> d) {
    auto f = c.frame_in_place(type, d);
    ASSERT_FALSE(f.empty());
    wire.assign(f.begin(), f.begin() + 7);  // the transport took 7 bytes
    c.queue_frame_tail(f.subspan(7));
  };
  Bytes input = masked(kBinary, repeat_pattern(500));
  srv.conn->receive(input);
  srv.conn->set_transport_blocked(true);
  ASSERT_TRUE(srv.conn->ping(bytes("p1")));  // priority: but not inside the tail
  srv.conn->send(Opcode::text, bytes("after"));
  ASSERT_TRUE(srv.conn->pong(bytes("p2")));
  const Bytes rest = srv.out();
  wire.insert(wire.end(), rest.begin(), rest.end());
  auto frames = decode_frames(wire);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].payload, repeat_pattern(500));
  // Both control frames jump the queued "after" (in either order), neither the tail.
  EXPECT_EQ(frames[1].opcode + frames[2].opcode, kPing + kPong);
  EXPECT_EQ(frames[3].payload, bytes("after"));
}

}  // namespace
}  // namespace tether_conn_test
