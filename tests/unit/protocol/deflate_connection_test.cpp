// protocol::Connection with permessage-deflate (RFC 7692): negotiation through the opening
// handshake in both roles, RSV1 rules (§6), compressed messages (whole, fragmented, mixed with
// plain ones, with and without context takeover), limits on the inflated size (§8 bombs: 1009)
// and corrupt data (1007). Byte-fed scenarios go through every chunking like connection_test.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "connection_harness.hpp"
#include "extensions/permessage_deflate.hpp"
#include "protocol/connection.hpp"
#include "tether/options.hpp"

namespace tether_conn_test {
namespace {

using tether::DeflateOptions;
using tether::extensions::DeflateParams;
using tether::extensions::PerMessageDeflate;
using tether::extensions::Side;
using tether::protocol::CountingRandom;

constexpr std::array<Role, 2> kRoles = {Role::server, Role::client};
const char* role_name(Role r) { return r == Role::server ? "server role" : "client role"; }

DeflateOptions enabled(bool server_nct = true, bool client_nct = true, int server_bits = 15,
                       int client_bits = 15) {
  DeflateOptions o;
  o.enabled = true;
  o.server_no_context_takeover = server_nct;
  o.client_no_context_takeover = client_nct;
  o.server_max_window_bits = server_bits;
  o.client_max_window_bits = client_bits;
  return o;
}

Bytes text_message(std::size_t n, unsigned salt) {
  static const std::string_view words[] = {
      "{\"user\":", "\"alice\"", ",\"text\":", "\"hello wörld\"", "}\n", "42"};
  Bytes b;
  std::mt19937 gen(salt);
  while (b.size() < n) {
    auto w = words[gen() % 6];
    b.insert(b.end(), w.begin(), w.end());
  }
  return b;  // whole words: always valid UTF-8
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(gen());
  return b;
}

// The payload a fresh compressor (first message of a connection) makes of `m`.
Bytes compress(std::span<const uint8_t> m, int bits = 15) {
  PerMessageDeflate d(DeflateParams{true, true, bits, bits}, Side::client);
  Bytes out;
  EXPECT_TRUE(d.compress(m, out));
  return out;
}
Bytes compress(std::string_view s) { return compress(bytes(s)); }

std::string with_header(std::string_view head, std::string_view header_line) {
  std::string s(head);
  s.insert(s.size() - 2, header_line);
  return s;
}

constexpr uint8_t kRsv1 = 0x40;

void expect_open_and_quiet_state(const Outcome& o) {
  EXPECT_EQ(o.state, State::open);
  EXPECT_FALSE(o.close_transport);
}

// ---- Chunked scenarios with a negotiated extension

struct DScenario {
  Role role = Role::server;
  DeflateOptions options = enabled();
  // Server role: the client's offer; client role: the 101's element. Empty: no header.
  std::string extension = "permessage-deflate; client_max_window_bits";
  bool expect_active = true;
  // true: `input` starts with the HTTP head (the handshake outcome is under test).
  bool handshake_in_input = false;
  std::size_t max_message = 16u << 20;
  Bytes input;
  std::function<void(Connection&, const Event&)> hook;
};

Bytes handshake_bytes(const DScenario& s) {
  std::string line = s.extension.empty() ? "" : "Sec-WebSocket-Extensions: " + s.extension + "\r\n";
  return bytes(s.role == Role::server ? with_header(kUpgradeRequest, line)
                                      : with_header(kResponse101, line));
}

Outcome run_deflate_pieces(const DScenario& s, const std::vector<std::size_t>& pieces) {
  ConnectionConfig cfg;
  cfg.role = s.role;
  cfg.max_message = s.max_message;
  cfg.deflate = &s.options;
  Recorder rec;
  CountingRandom rng(0x10);
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  rec.conn = &conn;
  if (s.role == Role::client) {
    conn.start_client(rfc_client_request());
    conn.consume_out(conn.out().size());  // the request; Rfc7692_7_1 checks offers on its own
  }
  Bytes whole = s.input;
  if (!s.handshake_in_input) {
    Bytes hs = handshake_bytes(s);
    conn.receive(hs);
    EXPECT_EQ(conn.state(), State::open);
    EXPECT_EQ(conn.deflate_active(), s.expect_active);
    EXPECT_EQ(rec.events, std::vector<Event>{ev_open()});
    rec.events.clear();
    conn.consume_out(conn.out().size());
  }
  rec.hook = s.hook;
  std::size_t pos = 0;
  for (std::size_t len : pieces) {
    if (whole.size() <= kCopyChunksUpTo) {
      Bytes piece(whole.begin() + static_cast<std::ptrdiff_t>(pos),
                  whole.begin() + static_cast<std::ptrdiff_t>(pos + len));
      conn.receive(piece);
    } else {
      conn.receive(std::span<uint8_t>(whole).subspan(pos, len));
    }
    pos += len;
  }
  EXPECT_EQ(pos, whole.size());
  Outcome o;
  o.events = std::move(rec.events);
  o.out.assign(conn.out().data(), conn.out().data() + conn.out().size());
  o.state = conn.state();
  o.close_transport = conn.should_close_transport();
  return o;
}

// The input whole, then in every chunk size (or `sizes`), then random splits: all the same.
Outcome run_deflate(const DScenario& s, std::optional<std::vector<std::size_t>> sizes = {}) {
  const std::size_t n = s.input.size();
  Outcome ref = run_deflate_pieces(s, n ? std::vector<std::size_t>{n} : std::vector<std::size_t>{});
  if (n == 0) return ref;
  for (std::size_t k : sizes ? *sizes : chunk_sizes(n)) {
    Outcome o = run_deflate_pieces(s, fixed_pieces(n, k));
    if (o != ref) {
      ADD_FAILURE() << "chunk size " << k << " of " << n
                    << " differs\nwhole: " << testing::PrintToString(ref)
                    << "\nchunked: " << testing::PrintToString(o);
      return ref;
    }
  }
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    Outcome o = run_deflate_pieces(s, random_pieces(n, seed));
    if (o != ref) {
      ADD_FAILURE() << "random split " << seed << " differs\nwhole: " << testing::PrintToString(ref)
                    << "\nsplit: " << testing::PrintToString(o);
      return ref;
    }
  }
  return ref;
}

DScenario dscenario(Role role, Bytes input) {
  DScenario s;
  s.role = role;
  if (role == Role::client)
    s.extension = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  s.input = std::move(input);
  return s;
}

// ---- Two live connections wired together

struct Pair {
  Pair(const DeflateOptions* server_options, const DeflateOptions* client_options,
       std::size_t max_message = 16u << 20)
      : srng(0x10), crng(0x40) {
    scfg.role = Role::server;
    scfg.deflate = server_options;
    scfg.max_message = max_message;
    ccfg.role = Role::client;
    ccfg.deflate = client_options;
    ccfg.max_message = max_message;
    scfg.rng = &srng;
    server = std::make_unique<Connection>(scfg, srec);
    ccfg.rng = &crng;
    client = std::make_unique<Connection>(ccfg, crec);
    srec.conn = server.get();
    crec.conn = client.get();
    client->start_client(rfc_client_request());
    request = take(*client);
    server->receive(request);
    response = take(*server);
    client->receive(response);
    EXPECT_EQ(server->state(), State::open);
    EXPECT_EQ(client->state(), State::open);
    srec.events.clear();
    crec.events.clear();
  }
  static Bytes take(Connection& c) {
    Bytes b(c.out().data(), c.out().data() + c.out().size());
    c.consume_out(c.out().size());
    return b;
  }
  // Moves what one side wrote to the other; returns the frames.
  std::vector<WireFrame> client_to_server() {
    Bytes b = take(*client);
    auto frames = decode_frames(b);
    server->receive(b);
    return frames;
  }
  std::vector<WireFrame> server_to_client() {
    Bytes b = take(*server);
    auto frames = decode_frames(b);
    client->receive(b);
    return frames;
  }
  ConnectionConfig scfg, ccfg;
  Recorder srec, crec;
  CountingRandom srng, crng;
  std::unique_ptr<Connection> server, client;
  Bytes request, response;
};

// ============================================================================================
// §5 negotiation through the opening handshake

TEST(Rfc7692_5, BothEndsEnabledNegotiateWithDefaults) {
  const DeflateOptions o = enabled();
  Pair p(&o, &o);
  EXPECT_TRUE(p.server->deflate_active());
  EXPECT_TRUE(p.client->deflate_active());
  EXPECT_NE(str(p.request).find("\r\nSec-WebSocket-Extensions: permessage-deflate; "
                                "client_max_window_bits; server_no_context_takeover; "
                                "client_no_context_takeover\r\n"),
            std::string::npos)
      << str(p.request);
  EXPECT_NE(str(p.response)
                .find("\r\nSec-WebSocket-Extensions: permessage-deflate; "
                      "server_no_context_takeover; client_no_context_takeover\r\n"),
            std::string::npos)
      << str(p.response);
}

TEST(Rfc7692_5, OffUnlessBothEndsEnable) {
  const DeflateOptions on = enabled();
  DeflateOptions disabled = enabled();
  disabled.enabled = false;
  const struct {
    const char* name;
    const DeflateOptions* server;
    const DeflateOptions* client;
  } cases[] = {{"server off", nullptr, &on},
               {"client off", &on, nullptr},
               {"server disabled", &disabled, &on},
               {"client disabled", &on, &disabled},
               {"both off", nullptr, nullptr}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Pair p(c.server, c.client);
    EXPECT_FALSE(p.server->deflate_active());
    EXPECT_FALSE(p.client->deflate_active());
    EXPECT_EQ(str(p.response).find("Sec-WebSocket-Extensions"), std::string::npos);
    // Messages above the threshold go out plain.
    const Bytes m = text_message(2000, 1);
    ASSERT_TRUE(p.client->send(Opcode::text, m));
    auto frames = p.client_to_server();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].rsv, 0);
    EXPECT_EQ(p.srec.events, std::vector<Event>{ev_message(Opcode::text, m)});
  }
}

TEST(Rfc7692_5, ServerDeclinesUnacceptableOffersAndTakesTheNextOne) {
  DScenario s = dscenario(Role::server, {});
  s.extension =
      "permessage-deflate; server_max_window_bits=8, permessage-deflate; x=1, "
      "permessage-deflate; server_max_window_bits=10";
  s.expect_active = true;
  s.input = masked(kText, compress("Hello"), true, kRsv1);
  Outcome o = run_deflate(s);
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("Hello")});

  s.extension = "permessage-deflate; server_max_window_bits=8";
  s.expect_active = false;
  s.input = masked(kText, "plain");
  o = run_deflate(s);
  EXPECT_EQ(o.events, std::vector<Event>{ev_text("plain")});
}

TEST(Rfc7692_7_1, ClientFailsTheConnectionOnAnUnacceptableResponse) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"permessage-deflate; client_max_window_bits=8", "client_max_window_bits=8"},
      {"permessage-deflate; x_foo", "unknown parameter x_foo"},
      {"permessage-deflate; server_max_window_bits", "invalid server_max_window_bits"},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
       "duplicate parameter"},
      {"permessage-deflate; client_max_window_bits", "invalid client_max_window_bits"},
  };
  for (const auto& [element, why] : cases) {
    SCOPED_TRACE(element);
    DScenario s = dscenario(Role::client, {});
    s.extension = element;
    s.handshake_in_input = true;
    s.input = cat({handshake_bytes(s), unmasked(kText, "ignored")});
    Outcome o = run_deflate(s);
    ASSERT_EQ(o.events.size(), 1u) << testing::PrintToString(o);
    EXPECT_EQ(o.events[0].kind, Kind::close);
    EXPECT_EQ(o.events[0].code, 1006);
    EXPECT_EQ(o.events[0].cause, Cause::handshake_failed);
    EXPECT_NE(str(o.events[0].data).find(why), std::string::npos) << str(o.events[0].data);
    EXPECT_TRUE(o.close_transport);
    EXPECT_TRUE(o.out.empty());  // §7.1: not open yet, so no close frame
  }
}

TEST(Rfc7692_7_1, ClientAppendsItsOfferToOtherExtensions) {
  const DeflateOptions o = enabled(false, false, 12, 11);
  ConnectionConfig cfg;
  cfg.role = Role::client;
  cfg.deflate = &o;
  Recorder rec;
  CountingRandom rng;
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  auto req = rfc_client_request();
  req.extensions = "x-foo";
  conn.start_client(req);
  std::string out(reinterpret_cast<const char*>(conn.out().data()), conn.out().size());
  EXPECT_NE(out.find("\r\nSec-WebSocket-Extensions: x-foo, permessage-deflate; "
                     "client_max_window_bits=11; server_max_window_bits=12\r\n"),
            std::string::npos)
      << out;
}

// ============================================================================================
// §6 RSV1: compressed messages, and where the bit may not appear

TEST(Rfc7692_6, CompressedAndPlainMessagesMixBothRoles) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes big = text_message(300, 1);
    Bytes input = cat({
        from_peer(role, kText, compress(big), true, kRsv1),
        from_peer(role, kText, "plain text"),
        from_peer(role, kBinary, compress(Bytes{1, 2, 3, 0, 255}), true, kRsv1),
        from_peer(role, kPing, "p"),
        from_peer(role, kBinary, random_bytes(40, 3)),
        from_peer(role, kText, Bytes{}, true, kRsv1),  // empty compressed: empty message
        from_peer(role, kText, compress(""), true, kRsv1),
        from_peer(role, kText, compress("Hello"), true, kRsv1),
    });
    Outcome o = run_deflate(dscenario(role, input));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_message(Opcode::text, big), ev_text("plain text"),
                                            ev_binary({1, 2, 3, 0, 255}), ev_ping(bytes("p")),
                                            ev_binary(random_bytes(40, 3)), ev_text(""),
                                            ev_text(""), ev_text("Hello")}));
    expect_open_and_quiet_state(o);
  }
}

TEST(Rfc7692_6, FragmentedCompressedMessageWithControlFramesBetween) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes message = text_message(2000, 7);
    const Bytes payload = compress(message);
    ASSERT_GT(payload.size(), 30u);
    const std::size_t a = payload.size() / 3, b = 2 * payload.size() / 3;
    auto part = [&](std::size_t from, std::size_t to) {
      return Bytes(payload.begin() + static_cast<std::ptrdiff_t>(from),
                   payload.begin() + static_cast<std::ptrdiff_t>(to));
    };
    // RSV1 on the first frame only (§6); an empty fragment in the middle is allowed too.
    Bytes input =
        cat({from_peer(role, kText, part(0, a), false, kRsv1), from_peer(role, kPing, "1"),
             from_peer(role, kCont, part(a, b), false), from_peer(role, kCont, Bytes{}, false),
             from_peer(role, kPong, "2"), from_peer(role, kCont, part(b, payload.size()), true)});
    Outcome o = run_deflate(dscenario(role, input));
    EXPECT_EQ(o.events, (std::vector<Event>{ev_ping(bytes("1")), ev_pong(bytes("2")),
                                            ev_message(Opcode::text, message)}));
    // The pong we wrote for the ping is never compressed.
    auto frames = decode_frames(o.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, kPong);
    EXPECT_EQ(frames[0].rsv, 0);
  }
}

TEST(Rfc7692_6, Rsv1OnContinuationOrControlFramesFails1002) {
  for (Role role : kRoles) {
    for (uint8_t op : {kPing, kPong, kClose}) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " op " << int{op});
      Bytes body = op == kClose ? close_body(1000) : bytes("x");
      Outcome o = run_deflate(dscenario(role, from_peer(role, op, body, true, kRsv1)));
      expect_failed(o, 1002, role);
      EXPECT_EQ(o.events.size(), 1u);
    }
    SCOPED_TRACE(testing::Message() << role_name(role) << " continuation");
    const Bytes payload = compress(text_message(500, 2));
    Bytes input =
        cat({from_peer(role, kText, Bytes(payload.begin(), payload.begin() + 10), false, kRsv1),
             from_peer(role, kCont, Bytes(payload.begin() + 10, payload.end()), true, kRsv1)});
    Outcome o = run_deflate(dscenario(role, input));
    expect_failed(o, 1002, role);
    EXPECT_EQ(o.events.size(), 1u);
    // Also on a continuation of an uncompressed message.
    o = run_deflate(dscenario(role, cat({from_peer(role, kText, "ab", false),
                                         from_peer(role, kCont, "c", true, kRsv1)})));
    expect_failed(o, 1002, role);
  }
}

TEST(Rfc7692_6, Rsv1WithoutNegotiationFails1002) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    // Enabled locally, but the peer did not offer (server) / the server did not accept (client).
    DScenario s = dscenario(role, from_peer(role, kText, compress("Hello"), true, kRsv1));
    s.extension = "";
    s.expect_active = false;
    Outcome o = run_deflate(s);
    expect_failed(o, 1002, role);
    EXPECT_EQ(o.events.size(), 1u);
    // RSV2 and RSV3 stay reserved even with the extension.
    for (uint8_t rsv : {0x20, 0x10, 0x60}) {
      o = run_deflate(dscenario(role, from_peer(role, kText, "x", true, rsv)));
      expect_failed(o, 1002, role);
    }
  }
}

// ============================================================================================
// §8 limits and bad data

// 64 MiB of zeros, compressed incrementally (about 64 KiB).
Bytes zero_bomb(std::size_t total) {
  PerMessageDeflate d(DeflateParams{true, true, 15, 15}, Side::client, 9);
  // compress() takes a whole message; 64 MiB of zeros is allocated once here, in the test.
  Bytes zeros(total, 0);
  Bytes out;
  EXPECT_TRUE(d.compress(zeros, out));
  return out;
}

TEST(Rfc7692_8, DecompressionBombFails1009) {
  static const Bytes bomb = zero_bomb(64u << 20);
  ASSERT_LT(bomb.size(), 128u * 1024);
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    DScenario s = dscenario(role, from_peer(role, kBinary, bomb, true, kRsv1));
    s.max_message = 1u << 20;
    Outcome o = run_deflate(s, huge_chunk_sizes(s.input.size()));
    expect_failed(o, 1009, role);
    EXPECT_EQ(o.events.size(), 1u);
    // The same bomb spread over fragments: the running total counts.
    const std::size_t q = bomb.size() / 4;
    s.input = cat({from_peer(role, kBinary, Bytes(bomb.begin(), bomb.begin() + q), false, kRsv1),
                   from_peer(role, kCont, Bytes(bomb.begin() + q, bomb.begin() + 2 * q), false),
                   from_peer(role, kCont, Bytes(bomb.begin() + 2 * q, bomb.end()), true)});
    o = run_deflate(s, huge_chunk_sizes(s.input.size()));
    expect_failed(o, 1009, role);
  }
}

TEST(Rfc7692_8, InflatedSizeLimitIsMaxMessage) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    const Bytes m(1000, 'a');
    DScenario s = dscenario(role, from_peer(role, kText, compress(m), true, kRsv1));
    s.max_message = 1000;
    Outcome o = run_deflate(s);
    EXPECT_EQ(o.events, std::vector<Event>{ev_message(Opcode::text, m)});
    s.max_message = 999;
    o = run_deflate(s);
    expect_failed(o, 1009, role);
    // The wire size of a compressed message is not what max_message limits.
    const Bytes big = random_bytes(900, 5);
    s.input = from_peer(role, kBinary, compress(big), true, kRsv1);  // > 900 bytes on the wire
    s.max_message = 900;
    o = run_deflate(s);
    EXPECT_EQ(o.events, std::vector<Event>{ev_binary(big)});
  }
}

TEST(Rfc7692_8, CorruptCompressedDataFails1007) {
  for (Role role : kRoles) {
    const std::vector<std::pair<const char*, Bytes>> cases = {
        {"reserved block type", {0xff, 0xff, 0xff}},
        {"distance too far back", {0xf2, 0x00, 0x11, 0x00, 0x00}},
        {"truncated stored block", {0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e'}},
    };
    for (const auto& [name, payload] : cases) {
      SCOPED_TRACE(testing::Message() << role_name(role) << " " << name);
      Outcome o =
          run_deflate(dscenario(role, cat({from_peer(role, kText, compress("fine"), true, kRsv1),
                                           from_peer(role, kBinary, payload, true, kRsv1),
                                           from_peer(role, kText, "never")})));
      ASSERT_GE(o.events.size(), 2u);
      EXPECT_EQ(o.events[0], ev_text("fine"));
      expect_failed(o, 1007, role);
    }
  }
}

TEST(Rfc7692_8, Utf8IsCheckedOnInflatedBytesAndFailsFast) {
  for (Role role : kRoles) {
    SCOPED_TRACE(role_name(role));
    // Valid UTF-8 whose multi-byte characters fall across inflate outputs and frames.
    const Bytes good = text_message(3000, 11);
    Outcome o = run_deflate(dscenario(role, from_peer(role, kText, compress(good), true, kRsv1)));
    EXPECT_EQ(o.events, std::vector<Event>{ev_message(Opcode::text, good)});
    // Invalid: the connection fails at the first fragment, before the message ends.
    Bytes bad = text_message(500, 12);
    bad[100] = 0xff;
    const Bytes payload = compress(bad);
    o = run_deflate(
        dscenario(role, from_peer(role, kText, payload, false, kRsv1)));  // never finished
    expect_failed(o, 1007, role);
    EXPECT_EQ(o.events.size(), 1u);
    // Truncated sequence at the end of the inflated message.
    o = run_deflate(
        dscenario(role, from_peer(role, kText, compress(Bytes{'a', 0xc3}), true, kRsv1)));
    expect_failed(o, 1007, role);
  }
}

// ============================================================================================
// §7.2.3 the RFC's frames through the connection

TEST(Rfc7692_7_2_3, ExampleFramesFromTheServer) {
  // §7.2.3.1 then §7.2.3.2 (the second refers back into the first: server keeps its context).
  const Bytes hello1 = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  const Bytes hello2 = {0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00};
  DScenario s = dscenario(Role::client, cat({hello1, hello2}));
  s.extension = "permessage-deflate";
  Outcome o = run_deflate(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_text("Hello"), ev_text("Hello")}));
  // §7.2.3.3 stored block, §7.2.3.5 two blocks, §7.2.3.4 BFINAL.
  s.input = {0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
             0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9,
             0x07, 0x00, 0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
  o = run_deflate(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_text("Hello"), ev_text("Hello"), ev_text("Hello")}));
}

TEST(Rfc7692_7_2_3, SecondMessageNeedsTheContextWhenTheClientKeepsIt) {
  // The server was told nothing about the client's resets: it keeps a per-connection inflater.
  DScenario s =
      dscenario(Role::server,
                cat({masked(kText, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, true, kRsv1),
                     masked(kText, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}, true, kRsv1)}));
  s.options = enabled(true, false);
  s.extension = "permessage-deflate";
  Outcome o = run_deflate(s);
  EXPECT_EQ(o.events, (std::vector<Event>{ev_text("Hello"), ev_text("Hello")}));
  // With client_no_context_takeover agreed, the same back-reference is corrupt data.
  s.options = enabled(true, true);
  o = run_deflate(s);
  ASSERT_EQ(o.events.size(), 2u);
  EXPECT_EQ(o.events[0], ev_text("Hello"));
  expect_failed(o, 1007, Role::server);
}

// ============================================================================================
// Sending

TEST(Rfc7692_6, SendCompressesWholeMessagesFromTheThreshold) {
  for (bool server_nct : {true, false}) {
    for (bool client_nct : {true, false}) {
      for (int bits : {9, 12, 15}) {
        SCOPED_TRACE(testing::Message() << "server_nct " << server_nct << " client_nct "
                                        << client_nct << " bits " << bits);
        const DeflateOptions o = enabled(server_nct, client_nct, bits, bits);
        Pair p(&o, &o);
        ASSERT_TRUE(p.server->deflate_active());
        const Bytes json = text_message(5000, 3);
        const Bytes noise = random_bytes(3000, 4);
        const std::vector<std::pair<Opcode, Bytes>> messages = {
            {Opcode::text, Bytes(63, 'a')},  // below the threshold: plain
            {Opcode::text, Bytes(64, 'a')},  // at the threshold: compressed
            {Opcode::text, json},
            {Opcode::text, json},  // again: smaller with context takeover
            {Opcode::binary, noise},
            {Opcode::binary, Bytes(100000, 7)},
        };
        for (Connection* from : {p.client.get(), p.server.get()}) {
          const bool from_client = from == p.client.get();
          const bool resets = from_client ? client_nct : server_nct;
          Recorder& to = from_client ? p.srec : p.crec;
          to.events.clear();
          std::vector<WireFrame> frames;
          for (const auto& [type, m] : messages) {
            ASSERT_TRUE(from->send(type, m));
            auto f = from_client ? p.client_to_server() : p.server_to_client();
            ASSERT_EQ(f.size(), 1u);
            frames.push_back(f[0]);
          }
          std::vector<Event> expected;
          for (const auto& [type, m] : messages) expected.push_back(ev_message(type, m));
          EXPECT_EQ(to.events, expected);
          EXPECT_EQ(frames[0].rsv, 0);
          EXPECT_EQ(frames[1].rsv, kRsv1);
          EXPECT_LT(frames[1].payload.size(), 64u);
          EXPECT_EQ(frames[2].rsv, kRsv1);
          EXPECT_LT(frames[2].payload.size(), json.size() / 2);
          if (!resets && bits == 15) {
            EXPECT_LT(frames[3].payload.size(), 100u);
          }
          // Incompressible data goes plain when our compressor resets anyway.
          EXPECT_EQ(frames[4].rsv, resets ? 0 : kRsv1);
          EXPECT_EQ(frames[5].rsv, kRsv1);
          EXPECT_LT(frames[5].payload.size(), 2000u);
        }
      }
    }
  }
}

TEST(Rfc7692_6, FragmentsControlFramesAndPreEncodedFramesGoPlain) {
  const DeflateOptions o = enabled();
  Pair p(&o, &o);
  const Bytes m = text_message(1000, 1);
  // A fragmented send: every fragment plain (RSV1 would have to be on the first one).
  ASSERT_TRUE(p.client->send(Opcode::text, m, false));
  ASSERT_TRUE(p.client->send(Opcode::continuation, m, true));
  ASSERT_TRUE(p.client->ping(bytes("ping")));
  auto frames = p.client_to_server();
  ASSERT_EQ(frames.size(), 3u);
  for (const auto& f : frames) EXPECT_EQ(f.rsv, 0);
  EXPECT_EQ(p.srec.events,
            (std::vector<Event>{ev_message(Opcode::text, cat({m, m})), ev_ping(bytes("ping"))}));
  // The pong answer and a pre-encoded fan-out frame.
  Bytes encoded;
  Connection::encode_server_frame(Opcode::text, m, encoded);
  ASSERT_TRUE(p.server->send_encoded(encoded));
  ASSERT_TRUE(p.server->close(1000, "bye"));
  frames = p.server_to_client();
  ASSERT_EQ(frames.size(), 3u);
  for (const auto& f : frames) EXPECT_EQ(f.rsv, 0);
  EXPECT_EQ(frames[0].opcode, kPong);
  EXPECT_EQ(frames[1].payload, m);
  EXPECT_EQ(frames[2].opcode, kClose);
}

TEST(Rfc7692_6, EchoFromInsideTheMessageCallback) {
  // A handler that sends while a compressed message is being delivered (re-entrant send).
  const DeflateOptions o = enabled(false, false);
  Pair p(&o, &o);
  p.srec.hook = [](Connection& c, const Event& e) {
    if (e.kind == Kind::message) c.send(e.type, e.data);
  };
  for (int i = 0; i < 5; ++i) {
    const Bytes m = text_message(700 + static_cast<std::size_t>(i) * 100, i);
    ASSERT_TRUE(p.client->send(Opcode::text, m));
    p.client_to_server();
    auto back = p.server_to_client();
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].rsv, kRsv1);
    ASSERT_FALSE(p.crec.events.empty());
    EXPECT_EQ(p.crec.events.back(), ev_message(Opcode::text, m));
  }
}

}  // namespace
}  // namespace tether_conn_test
