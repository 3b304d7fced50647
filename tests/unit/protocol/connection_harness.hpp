// Test harness for protocol::Connection: a recording Handler, a frame builder that does not use
// the codec under test, a decoder for what the connection wrote, and a runner that feeds one
// scenario's input in every chunking and demands identical events and output bytes each time.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/close_payload.hpp"
#include "codec/frame.hpp"
#include "loop/buffer_pool.hpp"
#include "protocol/connection.hpp"
#include "protocol/handshake.hpp"
#include "protocol/random.hpp"
#include "tether/close_info.hpp"

namespace tether_conn_test {

using tether::Cause;
using tether::CloseInfo;
using tether::codec::Opcode;
using tether::protocol::Connection;
using tether::protocol::ConnectionConfig;
using tether::protocol::Role;
using tether::protocol::State;
using Bytes = std::vector<uint8_t>;

// ---- Bytes helpers

inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string str(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline Bytes repeat_pattern(std::size_t n, uint8_t salt = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 31 + salt) ^ (i >> 8));
  return b;
}

inline std::string hex(std::span<const uint8_t> b, std::size_t limit = 96) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size() && i < limit; ++i) {
    if (i) s += ' ';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  if (b.size() > limit) s += " ... (" + std::to_string(b.size()) + " bytes)";
  return s;
}

// ---- Frame builder (independent of codec::encode_header and codec::apply_mask)

inline constexpr uint8_t kCont = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9,
                         kPong = 0xA;
// The RFC 6455 §5.7 example key.
inline constexpr std::array<uint8_t, 4> kKey = {0x37, 0xfa, 0x21, 0x3d};

struct FrameOpts {
  bool fin = true;
  uint8_t rsv = 0;  // the RSV bits in place: 0x40, 0x20, 0x10
  std::optional<std::array<uint8_t, 4>> key;
};

inline Bytes frame(uint8_t opcode, std::span<const uint8_t> payload, FrameOpts o = {}) {
  Bytes b;
  b.push_back(static_cast<uint8_t>((o.fin ? 0x80 : 0) | (o.rsv & 0x70) | (opcode & 0x0f)));
  const uint8_t mask_bit = o.key ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n < 126) {
    b.push_back(static_cast<uint8_t>(mask_bit | n));
  } else if (n <= 0xffff) {
    b.push_back(mask_bit | 126);
    b.push_back(static_cast<uint8_t>(n >> 8));
    b.push_back(static_cast<uint8_t>(n));
  } else {
    b.push_back(mask_bit | 127);
    for (int i = 7; i >= 0; --i) b.push_back(static_cast<uint8_t>(n >> (8 * i)));
  }
  if (o.key) {
    b.insert(b.end(), o.key->begin(), o.key->end());
    for (std::size_t i = 0; i < payload.size(); ++i) b.push_back(payload[i] ^ (*o.key)[i % 4]);
  } else {
    b.insert(b.end(), payload.begin(), payload.end());
  }
  return b;
}

// A frame as a client sends it (masked with kKey).
inline Bytes masked(uint8_t opcode, std::span<const uint8_t> payload, bool fin = true,
                    uint8_t rsv = 0) {
  return frame(opcode, payload, {fin, rsv, kKey});
}
inline Bytes masked(uint8_t opcode, std::string_view payload, bool fin = true, uint8_t rsv = 0) {
  return masked(opcode, bytes(payload), fin, rsv);
}
// A frame as a server sends it (never masked).
inline Bytes unmasked(uint8_t opcode, std::span<const uint8_t> payload, bool fin = true,
                      uint8_t rsv = 0) {
  return frame(opcode, payload, {fin, rsv, std::nullopt});
}
inline Bytes unmasked(uint8_t opcode, std::string_view payload, bool fin = true, uint8_t rsv = 0) {
  return unmasked(opcode, bytes(payload), fin, rsv);
}
// A well-formed frame from the peer of a connection in `role`.
inline Bytes from_peer(Role role, uint8_t opcode, std::span<const uint8_t> payload, bool fin = true,
                       uint8_t rsv = 0) {
  return role == Role::server ? masked(opcode, payload, fin, rsv)
                              : unmasked(opcode, payload, fin, rsv);
}
inline Bytes from_peer(Role role, uint8_t opcode, std::string_view payload, bool fin = true,
                       uint8_t rsv = 0) {
  return from_peer(role, opcode, bytes(payload), fin, rsv);
}

inline Bytes close_body(uint16_t code, std::string_view reason = {}) {
  Bytes b = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  b.insert(b.end(), reason.begin(), reason.end());
  return b;
}

// ---- Events

enum class Kind : uint8_t { open, message, ping, pong, close, http_request };

struct Event {
  Kind kind = Kind::open;
  Opcode type = Opcode::continuation;  // message only
  Bytes data;                          // message/ping/pong payload, close reason, HTTP target
  uint16_t code = 0;                   // close only
  bool was_clean = false;              // close only
  Cause cause = Cause::network_error;  // close only
  bool operator==(const Event&) const = default;
};

inline Event ev_open() { return Event{}; }
inline Event ev_message(Opcode type, Bytes data) {
  return {Kind::message, type, std::move(data), 0, false, Cause::network_error};
}
inline Event ev_text(std::string_view s) { return ev_message(Opcode::text, bytes(s)); }
inline Event ev_binary(Bytes b) { return ev_message(Opcode::binary, std::move(b)); }
inline Event ev_ping(Bytes b) {
  return {Kind::ping, Opcode::continuation, std::move(b), 0, false, Cause::network_error};
}
inline Event ev_pong(Bytes b) {
  return {Kind::pong, Opcode::continuation, std::move(b), 0, false, Cause::network_error};
}
inline Event ev_close(uint16_t code, std::string_view reason, bool clean, Cause cause) {
  return {Kind::close, Opcode::continuation, bytes(reason), code, clean, cause};
}

inline void PrintTo(const Event& e, std::ostream* os) {
  static constexpr const char* names[] = {"open", "message", "ping", "pong", "close", "http"};
  *os << names[static_cast<int>(e.kind)];
  switch (e.kind) {
    case Kind::message:
      *os << "(op=" << static_cast<int>(e.type) << ", " << e.data.size() << " bytes: ";
      *os << hex(e.data, 32) << ")";
      break;
    case Kind::ping:
    case Kind::pong:
      *os << "(" << hex(e.data, 32) << ")";
      break;
    case Kind::close:
      *os << "(" << e.code << ", \"" << str(e.data) << "\", clean=" << e.was_clean
          << ", cause=" << tether::to_string(e.cause) << ")";
      break;
    case Kind::http_request:
      *os << "(" << str(e.data) << ")";
      break;
    case Kind::open:
      break;
  }
}
inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  PrintTo(e, &os);
  return os;
}

// Records every event; `hook` runs after each one is recorded (for re-entrant calls).
class Recorder final : public tether::protocol::Handler {
 public:
  std::vector<Event> events;
  Connection* conn = nullptr;
  std::function<void(Connection&, const Event&)> hook;
  std::optional<std::string> http_reply;  // unset: use the base class's default answer

  void on_open() override { record(ev_open()); }
  void on_message(Opcode type, std::span<const uint8_t> data) override {
    record(ev_message(type, Bytes(data.begin(), data.end())));
  }
  void on_ping(std::span<const uint8_t> d) override { record(ev_ping(Bytes(d.begin(), d.end()))); }
  void on_pong(std::span<const uint8_t> d) override { record(ev_pong(Bytes(d.begin(), d.end()))); }
  void on_close(const CloseInfo& info) override {
    record(ev_close(info.code, info.reason, info.was_clean, info.cause));
  }
  void on_http_request(const tether::protocol::HttpHead& request, std::string& response) override {
    Event e;
    e.kind = Kind::http_request;
    e.data = bytes(request.method + " " + request.target);
    if (http_reply)
      response = *http_reply;
    else
      Handler::on_http_request(request, response);
    record(std::move(e));
  }

 private:
  void record(Event e) {
    events.push_back(std::move(e));
    if (hook && conn) hook(*conn, events.back());
  }
};

// ---- Decoding what the connection wrote

struct WireFrame {
  bool fin = true;
  uint8_t rsv = 0;
  uint8_t opcode = 0;
  bool masked = false;
  std::array<uint8_t, 4> key{};
  Bytes payload;  // unmasked
};

// Splits `wire` into frames with codec::parse_header; fails the test on a partial frame.
inline std::vector<WireFrame> decode_frames(std::span<const uint8_t> wire) {
  std::vector<WireFrame> frames;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    tether::codec::FrameHeader h;
    std::size_t used = 0;
    auto st = tether::codec::parse_header(wire.subspan(pos), h, used);
    if (st != tether::codec::HeaderStatus::ok) {
      ADD_FAILURE() << "undecodable output at byte " << pos << ": " << hex(wire.subspan(pos));
      return frames;
    }
    if (wire.size() - pos - used < h.payload_len) {
      ADD_FAILURE() << "truncated output frame at byte " << pos;
      return frames;
    }
    WireFrame f;
    f.fin = (wire[pos] & 0x80) != 0;
    f.rsv = wire[pos] & 0x70;
    f.opcode = wire[pos] & 0x0f;
    f.masked = (wire[pos + 1] & 0x80) != 0;
    if (f.masked) std::copy_n(wire.begin() + pos + used - 4, 4, f.key.begin());
    auto p = wire.subspan(pos + used, static_cast<std::size_t>(h.payload_len));
    f.payload.assign(p.begin(), p.end());
    if (f.masked)
      for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= f.key[i % 4];
    frames.push_back(std::move(f));
    pos += used + static_cast<std::size_t>(h.payload_len);
  }
  return frames;
}

struct CloseBody {
  uint16_t code = 0;
  std::string reason;
};

// The body of a close frame the connection wrote; it must itself be valid (§5.5.1, §7.4).
inline std::optional<CloseBody> parse_close(const WireFrame& f) {
  if (f.opcode != kClose) return std::nullopt;
  tether::codec::ClosePayload cp;
  if (tether::codec::parse_close_payload(f.payload, cp) != tether::codec::ClosePayloadStatus::ok)
    return std::nullopt;
  return CloseBody{cp.code, std::string(cp.reason)};
}

// ---- Scenarios

// RFC 6455 §1.2/§1.3 sample handshake.
inline constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
inline constexpr std::string_view kUpgradeRequest =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";
inline constexpr std::string_view kResponse101 =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

inline tether::protocol::ClientHandshakeRequest rfc_client_request() {
  tether::protocol::ClientHandshakeRequest r;
  r.host = "server.example.com";
  r.target = "/chat";
  r.key = std::string(kRfcKey);
  return r;
}

struct Scenario {
  Role role = Role::server;
  std::size_t max_frame = 16u << 20;
  std::size_t max_message = 16u << 20;
  const tether::protocol::ServerHandshakeConfig* server = nullptr;
  uint8_t rng_seed = 0x10;
  // true: complete the opening handshake first (not chunked; its output and events are dropped).
  // false: the input starts at the HTTP head (client: start_client() is called first).
  bool handshake_first = true;
  std::optional<std::string> http_reply;
  std::function<void(Connection&)> before;  // after the handshake, before the input
  Bytes input;
  bool eof_after = false;
  std::function<void(Connection&, const Event&)> hook;
};

struct Outcome {
  std::vector<Event> events;
  Bytes out;  // everything written after the (non-chunked) handshake
  State state = State::connecting;
  bool close_transport = false;
  bool operator==(const Outcome&) const = default;
};

inline void PrintTo(const Outcome& o, std::ostream* os) {
  static constexpr const char* states[] = {"connecting", "open", "closing", "closed"};
  *os << "state=" << states[static_cast<int>(o.state)] << " close_transport=" << o.close_transport
      << "\n  events:";
  for (const auto& e : o.events) *os << "\n    " << e;
  *os << "\n  out: " << hex(o.out);
}

// Inputs up to this size are fed as separately allocated chunks, so a read past the end of a
// chunk is a heap overflow under ASan.
inline constexpr std::size_t kCopyChunksUpTo = 8192;

// `pools`: the connection borrows its buffers and read state from there (as on an event loop),
// so the chunked runs, which share one, also check that what goes back to the pool is clean.
inline Outcome run_pieces(const Scenario& s, const std::vector<std::size_t>& pieces,
                          tether::loop::BufferPools* pools = nullptr) {
  ConnectionConfig cfg;
  cfg.pools = pools;
  cfg.role = s.role;
  cfg.max_frame = s.max_frame;
  cfg.max_message = s.max_message;
  cfg.server = s.server;
  Recorder rec;
  rec.http_reply = s.http_reply;
  tether::protocol::CountingRandom rng(s.rng_seed);
  cfg.rng = &rng;
  Connection conn(cfg, rec);
  rec.conn = &conn;
  if (s.role == Role::client) conn.start_client(rfc_client_request());
  if (s.handshake_first) {
    Bytes hs = bytes(s.role == Role::server ? kUpgradeRequest : kResponse101);
    conn.receive(hs);
    EXPECT_EQ(conn.state(), State::open);
    EXPECT_EQ(rec.events, std::vector<Event>{ev_open()});
    rec.events.clear();
    conn.consume_out(conn.out().size());
  }
  rec.hook = s.hook;
  if (s.before) s.before(conn);

  Bytes whole = s.input;  // receive() unmasks in place
  const bool copy = whole.size() <= kCopyChunksUpTo;
  std::size_t pos = 0;
  for (std::size_t len : pieces) {
    if (copy) {
      Bytes piece(whole.begin() + static_cast<std::ptrdiff_t>(pos),
                  whole.begin() + static_cast<std::ptrdiff_t>(pos + len));
      conn.receive(piece);
    } else {
      conn.receive(std::span<uint8_t>(whole).subspan(pos, len));
    }
    pos += len;
  }
  EXPECT_EQ(pos, whole.size()) << "pieces do not cover the input";
  if (s.eof_after) conn.receive_eof();

  Outcome o;
  o.events = std::move(rec.events);
  o.out.assign(conn.out().data(), conn.out().data() + conn.out().size());
  o.state = conn.state();
  o.close_transport = conn.should_close_transport();
  return o;
}

inline std::vector<std::size_t> fixed_pieces(std::size_t total, std::size_t chunk) {
  std::vector<std::size_t> p;
  for (std::size_t pos = 0; pos < total; pos += chunk) p.push_back(std::min(chunk, total - pos));
  return p;
}

// Random piece lengths, mostly small, sometimes large, sometimes empty (receive of 0 bytes).
inline std::vector<std::size_t> random_pieces(std::size_t total, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<std::size_t> p;
  std::size_t pos = 0;
  while (pos < total) {
    std::size_t left = total - pos;
    std::size_t len;
    switch (gen() % 8) {
      case 0:
        len = 0;
        break;
      case 1:
      case 2:
        len = 1 + gen() % std::max<std::size_t>(1, left / 3);
        break;
      default:
        len = 1 + gen() % 16;
    }
    len = std::min(len, left);
    p.push_back(len);
    pos += len;
  }
  return p;
}

// Every chunk size for small inputs; for big ones 1..64, powers of two and some primes.
inline std::vector<std::size_t> chunk_sizes(std::size_t total) {
  std::vector<std::size_t> sizes;
  if (total <= 4096) {
    for (std::size_t k = 1; k <= total; ++k) sizes.push_back(k);
    return sizes;
  }
  for (std::size_t k = 1; k <= 64; ++k) sizes.push_back(k);
  for (std::size_t k = 128; k < total; k *= 2) sizes.push_back(k);
  for (std::size_t k :
       {67u, 127u, 251u, 509u, 1021u, 4093u, 8191u, 16381u, 65521u, 131071u, 1048573u, 4194301u})
    if (k < total) sizes.push_back(k);
  sizes.push_back(total);
  return sizes;
}

// A few sizes for multi-megabyte inputs, where small chunks cost a call per few bytes (the
// small-input scenarios already cover every chunk size at frame and mask boundaries). 5 and 61
// are coprime with the 4-byte mask key, so every key phase is crossed.
inline std::vector<std::size_t> huge_chunk_sizes(std::size_t total) {
  std::vector<std::size_t> sizes = {5, 61, 4093, 65536, 1048573};
  sizes.erase(std::remove_if(sizes.begin(), sizes.end(), [&](std::size_t k) { return k >= total; }),
              sizes.end());
  sizes.push_back(total);
  return sizes;
}

// Runs `s` with its input whole, then in each chunking; every run must give the same events,
// output bytes, state and transport decision. Returns the whole-input outcome. The whole-input
// and random runs keep their own buffers; the fixed chunkings borrow from one shared pool.
inline Outcome run_chunked(const Scenario& s, std::optional<std::vector<std::size_t>> sizes = {}) {
  const std::size_t n = s.input.size();
  Outcome ref = run_pieces(s, n ? std::vector<std::size_t>{n} : std::vector<std::size_t>{});
  if (n == 0) return ref;
  const auto ks = sizes ? *sizes : chunk_sizes(n);
  tether::loop::BufferPools pools;
  for (std::size_t k : ks) {
    Outcome o = run_pieces(s, fixed_pieces(n, k), &pools);
    if (o != ref) {
      ADD_FAILURE() << "chunk size " << k << " of " << n << " differs from whole input\n"
                    << "whole: " << testing::PrintToString(ref)
                    << "\nchunked: " << testing::PrintToString(o);
      return ref;
    }
  }
  const int random_runs = n <= 4096 ? 3 : 1;
  for (int r = 0; r < random_runs; ++r) {
    const uint32_t seed = static_cast<uint32_t>(n * 7919 + static_cast<std::size_t>(r));
    Outcome o = run_pieces(s, random_pieces(n, seed));
    if (o != ref) {
      ADD_FAILURE() << "random split (seed " << seed << ") differs from whole input\n"
                    << "whole: " << testing::PrintToString(ref)
                    << "\nsplit: " << testing::PrintToString(o);
      return ref;
    }
  }
  return ref;
}

// ---- Common expectations

// The connection failed with `code` (§7.1.7): exactly one close frame carrying it (masked iff
// we are the client), a single unclean on_close last, nothing more to read.
inline void expect_failed(const Outcome& o, uint16_t code, Role role,
                          Cause cause = Cause::protocol_error) {
  ASSERT_FALSE(o.events.empty());
  const Event& last = o.events.back();
  EXPECT_EQ(last.kind, Kind::close);
  EXPECT_EQ(last.code, code);
  EXPECT_FALSE(last.was_clean);
  EXPECT_EQ(last.cause, cause);
  EXPECT_EQ(std::count_if(o.events.begin(), o.events.end(),
                          [](const Event& e) { return e.kind == Kind::close; }),
            1);
  auto frames = decode_frames(o.out);
  ASSERT_FALSE(frames.empty()) << "no close frame written";
  const WireFrame& f = frames.back();
  EXPECT_EQ(f.opcode, kClose);
  EXPECT_TRUE(f.fin);
  EXPECT_EQ(f.masked, role == Role::client);
  auto body = parse_close(f);
  ASSERT_TRUE(body.has_value()) << "close frame body invalid: " << hex(f.payload);
  EXPECT_EQ(body->code, code);
  EXPECT_EQ(o.state, State::closed);
  EXPECT_TRUE(o.close_transport);
}

}  // namespace tether_conn_test
