// RFC 7692 permessage-deflate: negotiation tables for both roles (§7.1), the payload
// transformation (§7.2) with every window and both context modes, the RFC's example bytes,
// shared per-thread zlib streams, and the decompression-bomb bound (§8).
#include "extensions/permessage_deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tether::DeflateOptions;
using tether::extensions::client_accept_response;
using tether::extensions::client_offer;
using tether::extensions::DeflateNegotiator;
using tether::extensions::DeflateParams;
using tether::extensions::InflateStatus;
using tether::extensions::live_zlib_streams;
using tether::extensions::PerMessageDeflate;
using tether::extensions::server_accept_offer;
using tether::extensions::server_negotiate;
using tether::extensions::ServerAgreement;
using tether::extensions::Side;
using tether::protocol::ExtensionOffer;
using tether::protocol::parse_extensions;
using Bytes = std::vector<uint8_t>;

Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string str(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }

ExtensionOffer element(std::string_view text) {
  std::vector<ExtensionOffer> out;
  EXPECT_TRUE(parse_extensions({text}, out)) << text;
  EXPECT_EQ(out.size(), 1u) << text;
  return out.empty() ? ExtensionOffer{} : out[0];
}

std::vector<ExtensionOffer> elements(std::string_view text) {
  std::vector<ExtensionOffer> out;
  EXPECT_TRUE(parse_extensions({text}, out)) << text;
  return out;
}

DeflateOptions opts(bool server_nct = true, bool client_nct = true, int server_bits = 15,
                    int client_bits = 15) {
  DeflateOptions o;
  o.enabled = true;
  o.server_no_context_takeover = server_nct;
  o.client_no_context_takeover = client_nct;
  o.server_max_window_bits = server_bits;
  o.client_max_window_bits = client_bits;
  return o;
}

DeflateParams params(bool server_nct, bool client_nct, int server_bits, int client_bits) {
  return {server_nct, client_nct, server_bits, client_bits};
}

// ============================================================================================
// §7.1 server role: one offer -> accept with this response, or decline

struct ServerCase {
  const char* name;
  DeflateOptions options;
  std::string offer;
  bool accepted;
  std::string response;  // when accepted
  DeflateParams params;  // when accepted
};

void run_server_table(const std::vector<ServerCase>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.name << ": " << c.offer);
    ServerAgreement a;
    std::string why;
    bool ok = server_accept_offer(element(c.offer), c.options, a, &why);
    ASSERT_EQ(ok, c.accepted) << why;
    if (!ok) {
      EXPECT_FALSE(why.empty());
      continue;
    }
    EXPECT_EQ(a.response, c.response);
    EXPECT_EQ(a.params, c.params);
    // The response must itself be a valid element for a client that made this offer (except
    // client_max_window_bits=8, which only a non-zlib client offers and ours refuses).
    if (c.offer.find("client_max_window_bits=8") != std::string::npos) continue;
    auto client = client_accept_response(element(a.response), element(c.offer));
    EXPECT_TRUE(client.ok) << client.error;
  }
}

TEST(Rfc7692, Sec7_1_ServerDeclinesUnknownDuplicateOrInvalidParameters) {
  const DeflateOptions o = opts();
  run_server_table({
      {"unknown parameter", o, "permessage-deflate; x_foo", false, "", {}},
      {"unknown with value", o, "permessage-deflate; mux=1", false, "", {}},
      {"case differs", o, "permessage-deflate; Server_No_Context_Takeover", false, "", {}},
      {"duplicate server_no_context_takeover",
       o,
       "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
       false,
       "",
       {}},
      {"duplicate client_no_context_takeover",
       o,
       "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
       false,
       "",
       {}},
      {"duplicate server_max_window_bits",
       o,
       "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
       false,
       "",
       {}},
      {"duplicate client_max_window_bits",
       o,
       "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
       false,
       "",
       {}},
      {"server_no_context_takeover with value",
       o,
       "permessage-deflate; server_no_context_takeover=1",
       false,
       "",
       {}},
      {"client_no_context_takeover with value",
       o,
       "permessage-deflate; client_no_context_takeover=true",
       false,
       "",
       {}},
  });
}

TEST(Rfc7692, Sec7_1_2_WindowBitsValuesMustBeDecimal8To15WithoutLeadingZeros) {
  const DeflateOptions o = opts();
  std::vector<ServerCase> cases;
  for (const char* bad : {"", "=7", "=16", "=0", "=08", "=015", "=abc", "=1e1", "=-9", "=+9"}) {
    cases.push_back({"server_max_window_bits",
                     o,
                     std::string("permessage-deflate; server_max_window_bits") + bad,
                     false,
                     "",
                     {}});
    if (*bad)  // bare client_max_window_bits is valid in an offer (§7.1.2.2)
      cases.push_back({"client_max_window_bits",
                       o,
                       std::string("permessage-deflate; client_max_window_bits") + bad,
                       false,
                       "",
                       {}});
  }
  run_server_table(cases);
  // Quoted values are tokens after unquoting (RFC 6455 §9.1) and mean the same.
  run_server_table({{"quoted", opts(true, true, 15, 15),
                     "permessage-deflate; server_max_window_bits=\"10\"", true,
                     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                     "server_max_window_bits=10",
                     params(true, true, 10, 15)}});
}

TEST(Rfc7692, Sec7_1_1_1_ServerNoContextTakeover) {
  run_server_table({
      // Offered: accepted by repeating it, whatever our option says.
      {"offered, option off", opts(false, false), "permessage-deflate; server_no_context_takeover",
       true, "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15)},
      // Not offered: the server may add it (our default, for the shared compressor).
      {"unoffered, option on", opts(true, false), "permessage-deflate", true,
       "permessage-deflate; server_no_context_takeover", params(true, false, 15, 15)},
      {"unoffered, option off", opts(false, false), "permessage-deflate", true,
       "permessage-deflate", params(false, false, 15, 15)},
  });
}

TEST(Rfc7692, Sec7_1_1_2_ClientNoContextTakeover) {
  run_server_table({
      // Our option asks clients to reset, offered or not.
      {"unoffered, option on", opts(false, true), "permessage-deflate", true,
       "permessage-deflate; client_no_context_takeover", params(false, true, 15, 15)},
      // Offered as a hint: repeating it costs the client nothing and lets us share an inflater.
      {"offered, option off", opts(false, false), "permessage-deflate; client_no_context_takeover",
       true, "permessage-deflate; client_no_context_takeover", params(false, true, 15, 15)},
      {"unoffered, option off", opts(false, false), "permessage-deflate", true,
       "permessage-deflate", params(false, false, 15, 15)},
  });
}

TEST(Rfc7692, Sec7_1_2_1_ServerMaxWindowBits) {
  run_server_table({
      // Answered with the same or a smaller value.
      {"offered 10, ours 15", opts(false, false), "permessage-deflate; server_max_window_bits=10",
       true, "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15)},
      {"offered 12, ours 10", opts(false, false, 10),
       "permessage-deflate; server_max_window_bits=12", true,
       "permessage-deflate; server_max_window_bits=10", params(false, false, 10, 15)},
      {"offered 15, ours 15", opts(false, false), "permessage-deflate; server_max_window_bits=15",
       true, "permessage-deflate; server_max_window_bits=15", params(false, false, 15, 15)},
      {"offered 9", opts(false, false), "permessage-deflate; server_max_window_bits=9", true,
       "permessage-deflate; server_max_window_bits=9", params(false, false, 9, 15)},
      // Unoffered: the server may still announce its smaller window.
      {"unoffered, ours 11", opts(false, false, 11), "permessage-deflate", true,
       "permessage-deflate; server_max_window_bits=11", params(false, false, 11, 15)},
      // Options outside 9..15 are clamped.
      {"ours 8 clamped to 9", opts(false, false, 8), "permessage-deflate", true,
       "permessage-deflate; server_max_window_bits=9", params(false, false, 9, 15)},
      {"ours 20 clamped to 15", opts(false, false, 20), "permessage-deflate", true,
       "permessage-deflate", params(false, false, 15, 15)},
      // zlib cannot deflate with a 256-byte window: decline rather than break the client.
      {"offered 8 declined",
       opts(false, false),
       "permessage-deflate; server_max_window_bits=8",
       false,
       "",
       {}},
  });
}

TEST(Rfc7692, Sec7_1_2_2_ClientMaxWindowBits) {
  run_server_table({
      // Not offered: never in the response, whatever our option.
      {"unoffered, ours 10", opts(false, false, 15, 10), "permessage-deflate", true,
       "permessage-deflate", params(false, false, 15, 15)},
      {"bare, ours 15", opts(false, false), "permessage-deflate; client_max_window_bits", true,
       "permessage-deflate", params(false, false, 15, 15)},
      {"bare, ours 12", opts(false, false, 15, 12), "permessage-deflate; client_max_window_bits",
       true, "permessage-deflate; client_max_window_bits=12", params(false, false, 15, 12)},
      {"offered 10, ours 12", opts(false, false, 15, 12),
       "permessage-deflate; client_max_window_bits=10", true,
       "permessage-deflate; client_max_window_bits=10", params(false, false, 15, 10)},
      {"offered 13, ours 15: the client's own limit needs no answer", opts(false, false),
       "permessage-deflate; client_max_window_bits=13", true,
       "permessage-deflate; client_max_window_bits=13", params(false, false, 15, 13)},
      // We inflate with 15 bits, so a client that limits itself to 8 is fine.
      {"offered 8", opts(false, false), "permessage-deflate; client_max_window_bits=8", true,
       "permessage-deflate; client_max_window_bits=8", params(false, false, 15, 8)},
      {"everything", opts(true, true, 12, 11),
       "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
       "server_max_window_bits=14; client_max_window_bits",
       true,
       "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
       "server_max_window_bits=12; client_max_window_bits=11",
       params(true, true, 12, 11)},
  });
}

TEST(Rfc7692, Sec5_ServerPicksTheFirstAcceptableOfferInClientOrder) {
  auto offers = elements(
      "x-foo, permessage-deflate; server_max_window_bits=8, permessage-deflate; bogus, "
      "permessage-deflate; server_max_window_bits=10, permessage-deflate");
  auto a = server_negotiate(offers, opts(false, false));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->response, "permessage-deflate; server_max_window_bits=10");
  EXPECT_EQ(a->params, params(false, false, 10, 15));

  EXPECT_FALSE(
      server_negotiate(elements("x-foo, permessage-deflate; server_max_window_bits=8"), opts())
          .has_value());
  EXPECT_FALSE(server_negotiate({}, opts()).has_value());
  // Extension names are case-insensitive tokens (RFC 6455 §9.1).
  EXPECT_TRUE(server_negotiate(elements("PerMessage-Deflate"), opts()).has_value());
}

TEST(Rfc7692, Sec5_NegotiatorPlugsIntoTheHandshake) {
  DeflateOptions o = opts();
  DeflateNegotiator n(o);
  EXPECT_EQ(n.name(), "permessage-deflate");
  std::string response;
  EXPECT_FALSE(n.accept_offer(element("permessage-deflate; server_max_window_bits=8"), response));
  EXPECT_FALSE(n.agreed().has_value());
  EXPECT_TRUE(n.accept_offer(element("permessage-deflate; client_max_window_bits"), response));
  EXPECT_EQ(response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  ASSERT_TRUE(n.agreed().has_value());
  EXPECT_EQ(*n.agreed(), params(true, true, 15, 15));
}

// ============================================================================================
// §7.1 client role: the offer, and the response checked against it

TEST(Rfc7692, Sec7_1_ClientOfferFollowsOptions) {
  EXPECT_EQ(client_offer(opts()),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover; "
            "client_no_context_takeover");
  EXPECT_EQ(client_offer(opts(false, false)), "permessage-deflate; client_max_window_bits");
  EXPECT_EQ(client_offer(opts(false, true, 10, 12)),
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; "
            "client_no_context_takeover");
  EXPECT_EQ(client_offer(opts(false, false, 3, 99)),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=9");
  // Every offer we make is one our own server accepts.
  for (int s = 9; s <= 15; ++s)
    for (int c = 9; c <= 15; ++c)
      for (int nct = 0; nct < 4; ++nct) {
        auto offer = client_offer(opts(nct & 1, nct & 2, s, c));
        ServerAgreement a;
        EXPECT_TRUE(server_accept_offer(element(offer), opts(), a)) << offer;
        auto r = client_accept_response(element(a.response), opts(nct & 1, nct & 2, s, c));
        EXPECT_TRUE(r.ok) << offer << " -> " << a.response << ": " << r.error;
      }
}

struct ClientCase {
  const char* name;
  std::string offer;
  std::string response;
  bool ok;
  DeflateParams params;     // when ok
  std::string error_has{};  // when failed
};

void run_client_table(const std::vector<ClientCase>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.name << ": " << c.offer << " -> " << c.response);
    auto r = client_accept_response(element(c.response), element(c.offer));
    ASSERT_EQ(r.ok, c.ok) << r.error;
    if (r.ok) {
      EXPECT_EQ(r.params, c.params);
    } else {
      EXPECT_NE(r.error.find(c.error_has), std::string::npos) << r.error;
      EXPECT_EQ(r.error.rfind("permessage-deflate: ", 0), 0u) << r.error;
    }
  }
}

TEST(Rfc7692, Sec7_1_ClientFailsOnUnknownDuplicateOrInvalidParameters) {
  const std::string offer = "permessage-deflate; client_max_window_bits";
  run_client_table({
      {"unknown", offer, "permessage-deflate; x_foo", false, {}, "unknown parameter x_foo"},
      {"duplicate",
       offer,
       "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
       false,
       {},
       "duplicate parameter"},
      {"no_context_takeover with value",
       offer,
       "permessage-deflate; client_no_context_takeover=1",
       false,
       {},
       "must not have a value"},
      {"server bits bare",
       offer,
       "permessage-deflate; server_max_window_bits",
       false,
       {},
       "invalid server_max_window_bits"},
      {"server bits 16",
       offer,
       "permessage-deflate; server_max_window_bits=16",
       false,
       {},
       "invalid server_max_window_bits"},
      {"server bits 07",
       offer,
       "permessage-deflate; server_max_window_bits=09",
       false,
       {},
       "invalid server_max_window_bits"},
      // §7.1.2.2: a response must give client_max_window_bits a value.
      {"client bits bare",
       offer,
       "permessage-deflate; client_max_window_bits",
       false,
       {},
       "invalid client_max_window_bits"},
      {"client bits 7",
       offer,
       "permessage-deflate; client_max_window_bits=7",
       false,
       {},
       "invalid client_max_window_bits"},
  });
}

TEST(Rfc7692, Sec7_1_1_1_ClientAcceptsServerNoContextTakeoverEvenUnoffered) {
  run_client_table({
      {"offered and accepted", "permessage-deflate; server_no_context_takeover",
       "permessage-deflate; server_no_context_takeover", true, params(true, false, 15, 15), ""},
      {"unoffered", "permessage-deflate", "permessage-deflate; server_no_context_takeover", true,
       params(true, false, 15, 15), ""},
      // Offered but left out: the server keeps its context; we can inflate that (tolerated).
      {"offered, not repeated", "permessage-deflate; server_no_context_takeover",
       "permessage-deflate", true, params(false, false, 15, 15), ""},
  });
}

TEST(Rfc7692, Sec7_1_1_2_ClientNoContextTakeoverBindsTheClient) {
  run_client_table({
      {"in the response", "permessage-deflate", "permessage-deflate; client_no_context_takeover",
       true, params(false, true, 15, 15), ""},
      // Offered, it is our promise even when the response leaves it out.
      {"only offered", "permessage-deflate; client_no_context_takeover", "permessage-deflate", true,
       params(false, true, 15, 15), ""},
  });
}

TEST(Rfc7692, Sec7_1_2_1_ClientChecksServerMaxWindowBits) {
  run_client_table({
      {"smaller than offered", "permessage-deflate; server_max_window_bits=12",
       "permessage-deflate; server_max_window_bits=10", true, params(false, false, 10, 15), ""},
      {"same as offered", "permessage-deflate; server_max_window_bits=12",
       "permessage-deflate; server_max_window_bits=12", true, params(false, false, 12, 15), ""},
      {"larger than offered",
       "permessage-deflate; server_max_window_bits=12",
       "permessage-deflate; server_max_window_bits=13",
       false,
       {},
       "server_max_window_bits=13 is larger than the offered 12"},
      // Unoffered: allowed, and 8 is fine since we inflate with 15 bits.
      {"unoffered 8", "permessage-deflate", "permessage-deflate; server_max_window_bits=8", true,
       params(false, false, 8, 15), ""},
  });
}

TEST(Rfc7692, Sec7_1_2_2_ClientChecksClientMaxWindowBits) {
  run_client_table({
      {"not offered",
       "permessage-deflate",
       "permessage-deflate; client_max_window_bits=10",
       false,
       {},
       "client_max_window_bits was not offered"},
      {"bare offer, 10", "permessage-deflate; client_max_window_bits",
       "permessage-deflate; client_max_window_bits=10", true, params(false, false, 15, 10), ""},
      {"offered 11, asked 13: our own limit stays", "permessage-deflate; client_max_window_bits=11",
       "permessage-deflate; client_max_window_bits=13", true, params(false, false, 15, 11), ""},
      {"offered 12 and no answer", "permessage-deflate; client_max_window_bits=12",
       "permessage-deflate", true, params(false, false, 15, 12), ""},
      {"asked 8",
       "permessage-deflate; client_max_window_bits",
       "permessage-deflate; client_max_window_bits=8",
       false,
       {},
       "client_max_window_bits=8, which zlib cannot compress with"},
  });
}

// ============================================================================================
// §7.2 transformation

// Compresses with `sender` and inflates with `receiver` (whole payload, then the tail).
std::string round_trip(PerMessageDeflate& sender, PerMessageDeflate& receiver,
                       std::span<const uint8_t> message, Bytes* wire = nullptr) {
  Bytes payload;
  EXPECT_TRUE(sender.compress(message, payload));
  if (wire) *wire = payload;
  Bytes out;
  EXPECT_EQ(receiver.inflate(payload, out, 1u << 30), InflateStatus::ok);
  EXPECT_EQ(receiver.finish_message(out, 1u << 30), InflateStatus::ok);
  return str(out);
}

Bytes text_message(std::size_t n, unsigned salt) {
  std::string words[] = {"{\"user\":", "\"alice\"", ",\"text\":", "\"hello world\"", "}\n", "42"};
  Bytes b;
  std::mt19937 gen(salt);
  while (b.size() < n) {
    const auto& w = words[gen() % 6];
    b.insert(b.end(), w.begin(), w.end());
  }
  b.resize(n);
  return b;
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(gen());
  return b;
}

TEST(Rfc7692, Sec7_2_RoundTripsEveryWindowAndContextMode) {
  const std::vector<Bytes> messages = {
      bytes("Hello"),        Bytes{},
      text_message(1000, 1), text_message(1000, 1),  // identical: context takeover helps
      random_bytes(3000, 2), text_message(200000, 3),
      Bytes(70000, 'x'),     text_message(17, 4)};
  for (int bits = 9; bits <= 15; ++bits) {
    for (bool reset : {true, false}) {
      SCOPED_TRACE(testing::Message() << "window " << bits << " reset " << reset);
      DeflateParams p = params(reset, reset, bits, bits);
      PerMessageDeflate server(p, Side::server), client(p, Side::client);
      EXPECT_EQ(server.compress_window_bits(), bits);
      EXPECT_EQ(server.compressor_resets(), reset);
      EXPECT_EQ(client.peer_resets(), reset);
      std::vector<std::size_t> sizes;
      for (const auto& m : messages) {
        Bytes wire;
        EXPECT_EQ(round_trip(server, client, m, &wire), str(m));
        sizes.push_back(wire.size());
        EXPECT_EQ(round_trip(client, server, m), str(m));
        // §7.2.1: the sync-flush tail is stripped.
        if (wire.size() >= 4) {
          EXPECT_FALSE(std::equal(wire.end() - 4, wire.end(), Bytes{0, 0, 0xff, 0xff}.begin()));
        }
      }
      // The repeated message: with context takeover it is a back-reference to the previous one
      // (when the window, less zlib's 262-byte lookahead, spans 1000 bytes).
      if (reset) {
        EXPECT_EQ(sizes[3], sizes[2]);
      } else if (bits >= 11) {
        EXPECT_LT(sizes[3], sizes[2] / 4);
      }
    }
  }
}

TEST(Rfc7692, Sec7_2_1_EmptyMessageCompressesToOneOctet) {
  PerMessageDeflate d(params(true, true, 15, 15), Side::server);
  Bytes out;
  ASSERT_TRUE(d.compress({}, out));
  EXPECT_EQ(out, Bytes{0x00});  // §7.2.3.6: an empty stored block's header bits
}

TEST(Rfc7692, Sec7_2_CompressAppendsToTheOutputVector) {
  PerMessageDeflate d(params(true, true, 15, 15), Side::server);
  Bytes out = {1, 2, 3};
  ASSERT_TRUE(d.compress(bytes("Hello"), out));
  EXPECT_EQ(out, (Bytes{1, 2, 3, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
}

// Inflates `payload` as one message fed in `chunk`-sized pieces.
InflateStatus inflate_message(PerMessageDeflate& d, std::span<const uint8_t> payload, Bytes& out,
                              std::size_t chunk = 0, std::size_t limit = 1u << 30) {
  if (chunk == 0) chunk = std::max<std::size_t>(payload.size(), 1);
  for (std::size_t pos = 0; pos < payload.size(); pos += chunk) {
    auto st = d.inflate(payload.subspan(pos, std::min(chunk, payload.size() - pos)), out, limit);
    if (st != InflateStatus::ok) return st;
  }
  return d.finish_message(out, limit);
}

TEST(Rfc7692, Sec7_2_3_1_HelloInOneCompressedBlock) {
  // The RFC's frame is c1 07 f2 48 cd c9 c9 07 00: FIN+RSV1 text, 7 bytes of payload.
  const Bytes frame = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  const std::span<const uint8_t> payload(frame.data() + 2, frame[1]);
  for (bool peer_resets : {true, false}) {
    PerMessageDeflate d(params(peer_resets, peer_resets, 15, 15), Side::client);
    for (std::size_t chunk = 1; chunk <= payload.size(); ++chunk) {
      Bytes out;
      EXPECT_EQ(inflate_message(d, payload, out, chunk), InflateStatus::ok);
      EXPECT_EQ(str(out), "Hello");
      if (!peer_resets) break;  // a kept context cannot replay the same first message
    }
  }
  // And zlib's level 6 produces exactly these bytes.
  PerMessageDeflate s(params(true, true, 15, 15), Side::server);
  Bytes out;
  ASSERT_TRUE(s.compress(bytes("Hello"), out));
  EXPECT_EQ(out, Bytes(payload.begin(), payload.end()));
}

TEST(Rfc7692, Sec7_2_3_2_SharingTheSlidingWindow) {
  // Second "Hello" as a back-reference into the first message (peer keeps its context).
  PerMessageDeflate d(params(false, false, 15, 15), Side::client);
  Bytes out;
  ASSERT_EQ(inflate_message(d, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, out),
            InflateStatus::ok);
  EXPECT_EQ(str(out), "Hello");
  out.clear();
  ASSERT_EQ(inflate_message(d, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}, out), InflateStatus::ok);
  EXPECT_EQ(str(out), "Hello");
  // Our compressor with takeover produces the same bytes.
  PerMessageDeflate s(params(false, false, 15, 15), Side::server);
  Bytes a, b;
  ASSERT_TRUE(s.compress(bytes("Hello"), a));
  ASSERT_TRUE(s.compress(bytes("Hello"), b));
  EXPECT_EQ(b, (Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}));
}

TEST(Rfc7692, Sec7_2_3_3_to_5_OtherBlockShapes) {
  struct Case {
    const char* name;
    Bytes payload;
  };
  const Case cases[] = {
      {"7.2.3.3 stored block", {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}},
      {"7.2.3.4 BFINAL set", {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}},
      {"7.2.3.5 two blocks",
       {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}},
  };
  for (const auto& c : cases) {
    for (bool peer_resets : {true, false}) {
      SCOPED_TRACE(testing::Message() << c.name << " peer resets " << peer_resets);
      PerMessageDeflate d(params(peer_resets, peer_resets, 15, 15), Side::client);
      for (int round = 0; round < 2; ++round) {  // twice: the state after the message is sound
        Bytes out;
        ASSERT_EQ(inflate_message(d, c.payload, out, 1 + static_cast<std::size_t>(round) * 3),
                  InflateStatus::ok);
        EXPECT_EQ(str(out), "Hello");
      }
    }
  }
}

TEST(Rfc7692, Sec7_2_2_EmptyPayloadIsAnEmptyMessage) {
  PerMessageDeflate d(params(true, true, 15, 15), Side::client);
  Bytes out;
  EXPECT_EQ(d.inflate({}, out, 100), InflateStatus::ok);
  EXPECT_EQ(d.finish_message(out, 100), InflateStatus::ok);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.finish_message(out, 100), InflateStatus::ok);  // without any inflate() call
  EXPECT_TRUE(out.empty());
}

// §7.2.3.4 asks a sender that ends with a BFINAL block to add one 0x00 octet so the tail still
// parses; zlib's Z_FINISH output (python's compressobj().flush(), for one) lacks it. Both are
// accepted: nothing follows the final block, so there is nothing to misread.
TEST(Rfc7692, Sec7_2_3_4_BfinalWithOrWithoutTheExtraOctet) {
  for (const Bytes& payload : {Bytes{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00},
                               Bytes{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}) {
    for (bool keep : {false, true}) {
      SCOPED_TRACE(std::to_string(payload.size()) + (keep ? " takeover" : " reset"));
      PerMessageDeflate d(params(!keep, !keep, 15, 15), Side::client);
      for (int i = 0; i < 2; ++i) {  // and the stream is usable for the next message
        Bytes out;
        EXPECT_EQ(inflate_message(d, payload, out), InflateStatus::ok);
        EXPECT_EQ(str(out), "Hello");
      }
    }
  }
}

// §7.2.3.6: an empty message compresses to the single octet 0x00, also right after another
// message with context takeover (where a second sync flush would produce no bytes at all).
TEST(Rfc7692, Sec7_2_3_6_EmptyMessagesRoundTripWithEveryContextMode) {
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "takeover" : "reset");
    PerMessageDeflate tx(params(!keep, !keep, 15, 15), Side::server);
    PerMessageDeflate rx(params(!keep, !keep, 15, 15), Side::client);
    for (const std::string& m : {std::string(), std::string(), std::string(300, 'a'), std::string(),
                                 std::string("Hello")}) {
      Bytes wire, out;
      ASSERT_TRUE(tx.compress(bytes(m), wire));
      if (m.empty()) {
        EXPECT_EQ(wire, Bytes{0x00});
      }
      ASSERT_EQ(inflate_message(rx, wire, out), InflateStatus::ok);
      EXPECT_EQ(str(out), m);
    }
  }
}

TEST(Rfc7692, Sec7_2_2_CorruptDataIsReported) {
  const Bytes good = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"reserved block type 11", {0xff, 0xff, 0xff}},
      {"stored block LEN/NLEN mismatch", {0x00, 0x05, 0x00, 0xfa, 0xfe, 'H', 'e', 'l', 'l', 'o'}},
      {"distance beyond the start", {0xf2, 0x00, 0x11, 0x00, 0x00}},
      // A stored block cut short: the message does not end on a block boundary (§7.2.2).
      {"truncated stored block", {0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e'}},
  };
  for (const auto& [name, payload] : cases) {
    SCOPED_TRACE(name);
    PerMessageDeflate d(params(true, true, 15, 15), Side::client);
    Bytes out;
    EXPECT_EQ(inflate_message(d, payload, out), InflateStatus::corrupt);
    // The failure ended the message and reset the inflater: the next message inflates fine.
    out.clear();
    EXPECT_EQ(inflate_message(d, good, out), InflateStatus::ok);
    EXPECT_EQ(str(out), "Hello");
  }
}

TEST(Rfc7692, Sec7_2_2_EveryChunkingInflatesTheSame) {
  const Bytes message = text_message(600, 9);
  PerMessageDeflate s(params(true, true, 15, 15), Side::server);
  Bytes payload;
  ASSERT_TRUE(s.compress(message, payload));
  PerMessageDeflate d(params(true, true, 15, 15), Side::client);
  for (std::size_t chunk = 1; chunk <= payload.size(); ++chunk) {
    Bytes out;
    ASSERT_EQ(inflate_message(d, payload, out, chunk), InflateStatus::ok) << chunk;
    ASSERT_EQ(out, message) << chunk;
  }
}

TEST(Rfc7692, Sec8_LimitIsInclusive) {
  const Bytes message(5000, 'a');
  PerMessageDeflate s(params(true, true, 15, 15), Side::server);
  Bytes payload;
  ASSERT_TRUE(s.compress(message, payload));
  PerMessageDeflate d(params(true, true, 15, 15), Side::client);
  Bytes out;
  EXPECT_EQ(inflate_message(d, payload, out, 0, 5000), InflateStatus::ok);
  EXPECT_EQ(out.size(), 5000u);
  out.clear();
  d.abort_message();
  EXPECT_EQ(inflate_message(d, payload, out, 0, 4999), InflateStatus::too_big);
  EXPECT_EQ(out.size(), 5000u);  // stopped one byte past the limit
  d.abort_message();
  out.clear();
  EXPECT_EQ(inflate_message(d, payload, out, 3, 4999), InflateStatus::too_big);
  d.abort_message();
}

// A stream of `total` zero bytes, compressed 1 MiB at a time as the consumer asks for more: the
// bomb never exists in memory uncompressed (or even whole).
class ZeroBomb {
 public:
  explicit ZeroBomb(std::size_t total) : left_(total) {
    EXPECT_EQ(deflateInit2(&z_, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  }
  ~ZeroBomb() { deflateEnd(&z_); }
  bool done() const { return left_ == 0; }
  // The compressed bytes for the next 1 MiB of zeros (the last piece sync-flushed, tail kept
  // off as §7.2.1 does).
  Bytes next() {
    static const Bytes zeros(1u << 20, 0);
    const std::size_t n = std::min(left_, zeros.size());
    left_ -= n;
    Bytes out(n / 500 + 1024);
    z_.next_in = const_cast<Bytef*>(zeros.data());
    z_.avail_in = static_cast<uInt>(n);
    std::size_t used = 0;
    const int flush = left_ == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    do {
      if (used == out.size()) out.resize(out.size() * 2);
      z_.next_out = out.data() + used;
      z_.avail_out = static_cast<uInt>(out.size() - used);
      EXPECT_NE(deflate(&z_, flush), Z_STREAM_ERROR);
      used = out.size() - z_.avail_out;
    } while (z_.avail_in > 0 || z_.avail_out == 0);
    out.resize(used);
    if (left_ == 0) out.resize(out.size() - 4);
    return out;
  }

 private:
  z_stream z_{};
  std::size_t left_;
};

TEST(Rfc7692, Sec8_DecompressionBombStopsAtTheCapWithoutGrowing) {
  constexpr std::size_t kGiB = std::size_t{1} << 30;
  constexpr std::size_t kLimit = 16u << 20;
  const auto streams_before = live_zlib_streams();
  PerMessageDeflate d(params(true, true, 15, 15), Side::server);
  ZeroBomb bomb(kGiB);
  Bytes out;
  std::size_t fed = 0;
  std::size_t max_capacity = 0;
  InflateStatus st = InflateStatus::ok;
  while (!bomb.done() && st == InflateStatus::ok) {
    Bytes piece = bomb.next();
    // Fed in 4 KiB pieces, as a network would deliver them.
    for (std::size_t pos = 0; pos < piece.size() && st == InflateStatus::ok; pos += 4096) {
      const std::size_t n = std::min<std::size_t>(4096, piece.size() - pos);
      st = d.inflate(std::span<const uint8_t>(piece).subspan(pos, n), out, kLimit);
      fed += n;
      max_capacity = std::max(max_capacity, out.capacity());
      ASSERT_LE(out.size(), kLimit + 1);
    }
  }
  EXPECT_EQ(st, InflateStatus::too_big);
  EXPECT_FALSE(bomb.done()) << "the whole gigabyte was inflated";
  EXPECT_EQ(out.size(), kLimit + 1);
  EXPECT_LE(max_capacity, kLimit + 64 * 1024) << "the output buffer overshot the cap";
  // ~1000:1 for zeros: the cap is reached after a few tens of KiB of input, not 1 MiB.
  EXPECT_LT(fed, 256u * 1024) << "fed " << fed << " compressed bytes";
  d.abort_message();
  const auto streams_after = live_zlib_streams();
  EXPECT_LE(streams_after.inflaters, streams_before.inflaters + 1);
}

TEST(Rfc7692, Sec8_BombFedAsOnePieceStopsToo) {
  // A smaller bomb in one inflate() call: the stop happens inside the call.
  ZeroBomb bomb(64u << 20);
  Bytes all;
  while (!bomb.done()) {
    Bytes p = bomb.next();
    all.insert(all.end(), p.begin(), p.end());
  }
  PerMessageDeflate d(params(true, true, 15, 15), Side::client);
  Bytes out;
  EXPECT_EQ(d.inflate(all, out, 1u << 20), InflateStatus::too_big);
  EXPECT_EQ(out.size(), (1u << 20) + 1);
  EXPECT_LE(out.capacity(), (1u << 20) + 1);
  d.abort_message();
  // Without a limit problem the same stream inflates to 64 MiB of zeros.
  Bytes full;
  EXPECT_EQ(inflate_message(d, all, full, 0, 64u << 20), InflateStatus::ok);
  EXPECT_EQ(full.size(), 64u << 20);
  EXPECT_TRUE(std::all_of(full.begin(), full.end(), [](uint8_t b) { return b == 0; }));
}

// ============================================================================================
// Memory: shared per-thread streams without context takeover, lazy ones with it

TEST(Rfc7692, Sec7_1_1_NoContextTakeoverSharesOneStreamPerThread) {
  // Warm up this thread's shared streams, then count.
  {
    PerMessageDeflate w(params(true, true, 15, 15), Side::server);
    Bytes m = text_message(500, 1);
    EXPECT_EQ(round_trip(w, w, m), str(m));
  }
  const auto before = live_zlib_streams();
  std::vector<std::unique_ptr<PerMessageDeflate>> conns;
  for (int i = 0; i < 100; ++i)
    conns.push_back(std::make_unique<PerMessageDeflate>(params(true, true, 15, 15), Side::server));
  for (int round = 0; round < 3; ++round) {
    for (auto& c : conns) {
      Bytes m = text_message(300 + static_cast<std::size_t>(round), round);
      // Each connection compresses and inflates through the thread's shared streams.
      EXPECT_EQ(round_trip(*c, *c, m), str(m));
    }
  }
  const auto after = live_zlib_streams();
  EXPECT_EQ(after.deflaters, before.deflaters);
  EXPECT_EQ(after.inflaters, before.inflaters);
}

TEST(Rfc7692, Sec7_1_1_InterleavedMessagesGetTheirOwnPooledInflater) {
  PerMessageDeflate sender(params(true, true, 15, 15), Side::client);
  const Bytes m1 = text_message(4000, 1), m2 = text_message(4000, 2);
  Bytes p1, p2;
  ASSERT_TRUE(sender.compress(m1, p1));
  ASSERT_TRUE(sender.compress(m2, p2));
  PerMessageDeflate a(params(true, true, 15, 15), Side::server);
  PerMessageDeflate b(params(true, true, 15, 15), Side::server);
  Bytes o1, o2;
  const std::size_t h1 = p1.size() / 2, h2 = p2.size() / 2;
  // Both connections are in the middle of a message at once (as across two reads).
  ASSERT_EQ(a.inflate(std::span<const uint8_t>(p1).first(h1), o1, 1u << 20), InflateStatus::ok);
  ASSERT_EQ(b.inflate(std::span<const uint8_t>(p2).first(h2), o2, 1u << 20), InflateStatus::ok);
  const auto during = live_zlib_streams();
  ASSERT_EQ(a.inflate(std::span<const uint8_t>(p1).subspan(h1), o1, 1u << 20), InflateStatus::ok);
  ASSERT_EQ(b.inflate(std::span<const uint8_t>(p2).subspan(h2), o2, 1u << 20), InflateStatus::ok);
  ASSERT_EQ(a.finish_message(o1, 1u << 20), InflateStatus::ok);
  ASSERT_EQ(b.finish_message(o2, 1u << 20), InflateStatus::ok);
  EXPECT_EQ(o1, m1);
  EXPECT_EQ(o2, m2);
  // Returned to the pool, not freed: the next messages allocate nothing.
  EXPECT_EQ(live_zlib_streams().inflaters, during.inflaters);
  Bytes o3;
  EXPECT_EQ(inflate_message(a, p1, o3), InflateStatus::ok);
  EXPECT_EQ(live_zlib_streams().inflaters, during.inflaters);
}

TEST(Rfc7692, Sec7_1_1_ContextTakeoverStreamsArePerConnectionAndLazy) {
  const auto before = live_zlib_streams();
  {
    PerMessageDeflate server(params(false, false, 15, 15), Side::server);
    PerMessageDeflate client(params(false, false, 15, 15), Side::client);
    EXPECT_EQ(live_zlib_streams().deflaters, before.deflaters);  // nothing until a message
    EXPECT_EQ(live_zlib_streams().inflaters, before.inflaters);
    Bytes m = text_message(100, 5);
    EXPECT_EQ(round_trip(server, client, m), str(m));
    EXPECT_EQ(live_zlib_streams().deflaters, before.deflaters + 1);
    EXPECT_EQ(live_zlib_streams().inflaters, before.inflaters + 1);
    EXPECT_EQ(round_trip(server, client, m), str(m));  // the same streams again
    EXPECT_EQ(live_zlib_streams().deflaters, before.deflaters + 1);
    EXPECT_EQ(live_zlib_streams().inflaters, before.inflaters + 1);
  }
  EXPECT_EQ(live_zlib_streams().deflaters, before.deflaters);
  EXPECT_EQ(live_zlib_streams().inflaters, before.inflaters);
}

TEST(Rfc7692, Sec7_1_1_SharedCompressorsAreKeptApartByWindowAndLevel) {
  // Two connections on one thread with different windows and levels: each message must still
  // be what its own parameters say (a 9-bit window never emits distances beyond 512).
  PerMessageDeflate a(params(true, true, 9, 9), Side::server, 1);
  PerMessageDeflate b(params(true, true, 15, 15), Side::server, 9);
  PerMessageDeflate recv(params(true, true, 15, 15), Side::client);
  const Bytes m = text_message(50000, 7);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(round_trip(a, recv, m), str(m));
    EXPECT_EQ(round_trip(b, recv, m), str(m));
  }
  // Inflating a's output with a 9-bit window proves a used one.
  Bytes payload;
  ASSERT_TRUE(a.compress(m, payload));
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, -9), Z_OK);
  payload.insert(payload.end(), {0, 0, 0xff, 0xff});
  Bytes out(m.size() + 16);
  z.next_in = payload.data();
  z.avail_in = static_cast<uInt>(payload.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_SYNC_FLUSH), Z_OK);
  EXPECT_EQ(out.size() - z.avail_out, m.size());
  inflateEnd(&z);
}

}  // namespace
