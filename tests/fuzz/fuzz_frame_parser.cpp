// libFuzzer target: RFC 6455 §5 framing as a peer would send it, through the sans-I/O
// protocol::Connection in both roles (already OPEN), plus codec::parse_header on its own.
//
// Input layout:
//   byte 0  options (see kOpt*)
//   byte 1  seed for the chunk sizes the stream is fed in
//   rest    the byte stream the peer sends after the opening handshake
//
// Every input is replayed twice per role: once in one receive() call, once split into chunks
// (handshake and frames concatenated, so splits also straddle the end of the HTTP head). The two
// runs must produce the same events and the same output bytes. Cheap invariants are checked on
// every event; a violation aborts (__builtin_trap), which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/frame.hpp"
#include "fuzz_check.hpp"
#include "protocol/connection.hpp"
#include "protocol/handshake.hpp"
#include "protocol/random.hpp"

namespace {

using tether::CloseInfo;
using tether::codec::FrameHeader;
using tether::codec::HeaderStatus;
using tether::codec::Opcode;
using namespace tether::protocol;

// Options in byte 0. The low three bits select the split pattern.
constexpr uint8_t kOptSplitMask = 0x07;
constexpr uint8_t kOptSmallLimits = 0x08;  // max_frame 100, max_message 200: reach the 1009 path
constexpr uint8_t kOptEcho = 0x10;         // handler sends every message back (re-entrant send)
constexpr uint8_t kOptCloseEarly = 0x20;   // handler calls close() on the second event
constexpr uint8_t kOptPartialOut = 0x40;   // drain only half of out() after each chunk
constexpr uint8_t kOptEof = 0x80;          // report EOF after the last chunk

// Chunk sizes derived from one seed byte and the options; deterministic per input.
class Splitter {
 public:
  Splitter(uint8_t mode, uint8_t seed) : mode_(mode & kOptSplitMask), seed_(seed) {
    state_ = static_cast<uint16_t>((seed << 8) | 0x5B) | 1u;
  }
  bool whole() const { return mode_ == 0; }
  std::size_t next(std::size_t remaining) {
    std::size_t n = remaining;
    switch (mode_) {
      case 0:
        break;
      case 1:
        n = 1;
        break;
      case 2:
        n = 2 + seed_ % 3;  // 2..4: splits inside 2-, 4- and 8-byte length fields
        break;
      case 3:
        n = 7 + seed_ % 8;  // around the 14-byte maximum header
        break;
      case 4:
        n = 1 + seed_;  // fixed size chosen by the seed
        break;
      default: {
        // xorshift16: sizes vary chunk to chunk, bounded by the seed.
        xorshift16(state_);
        std::size_t bound = mode_ == 5 ? 4 : mode_ == 6 ? 16 : 1 + seed_;
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

// FNV-1a over event descriptions: the event log without storing it.
struct Digest {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, std::size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add_u64(uint64_t v) { add(&v, sizeof v); }
};

// Independent RFC 3629 check (not the library's DFA) of what was delivered as text.
bool utf8_ok(std::span<const uint8_t> s) {
  std::size_t i = 0;
  while (i < s.size()) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                            // surrogate
    if (cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

class FuzzHandler final : public Handler {
 public:
  FuzzHandler(uint8_t opts, std::size_t max_message) : opts_(opts), max_message_(max_message) {}
  void attach(Connection* c) { conn_ = c; }

  void on_open() override {
    FUZZ_CHECK(!opened_ && !closed_);
    opened_ = true;
    FUZZ_CHECK(conn_->state() == State::open);
    record(1, {});
  }
  void on_message(Opcode type, std::span<const uint8_t> data) override {
    FUZZ_CHECK(opened_ && !closed_);  // nothing is delivered after a failure or a close
    FUZZ_CHECK(type == Opcode::text || type == Opcode::binary);
    FUZZ_CHECK(conn_->state() == State::open || conn_->state() == State::closing);
    FUZZ_CHECK(data.size() <= max_message_);
    if (type == Opcode::text) FUZZ_CHECK(utf8_ok(data));
    record(type == Opcode::text ? 2 : 3, data);
    react(type, data);
  }
  void on_ping(std::span<const uint8_t> data) override {
    FUZZ_CHECK(opened_ && !closed_);
    FUZZ_CHECK(data.size() <= tether::codec::max_control_payload);
    record(4, data);
    react(Opcode::ping, data);
    if (opts_ & kOptEcho) {
      // An extra, unsolicited pong through the public API (allowed by §5.5.3).
      bool sent = conn_->pong(data);
      FUZZ_CHECK(sent == (conn_->state() == State::open));
    }
  }
  void on_pong(std::span<const uint8_t> data) override {
    FUZZ_CHECK(opened_ && !closed_);
    FUZZ_CHECK(data.size() <= tether::codec::max_control_payload);
    record(5, data);
    if (opts_ & kOptEcho) {
      bool sent = conn_->ping(data);
      FUZZ_CHECK(sent == (conn_->state() == State::open));
    }
  }
  void on_close(const CloseInfo& info) override {
    FUZZ_CHECK(!closed_);  // at most once
    closed_ = true;
    FUZZ_CHECK(conn_->state() == State::closed);
    FUZZ_CHECK(conn_->should_close_transport());
    // Codes a close event may carry: wire-valid ones, 1005 (no code) and 1006 (no close frame).
    FUZZ_CHECK(info.code == 1005 || info.code == 1006 || (info.code >= 1000 && info.code <= 1003) ||
               (info.code >= 1007 && info.code <= 1014) ||
               (info.code >= 3000 && info.code <= 4999));
    if (info.was_clean) FUZZ_CHECK(info.code != 1006);
    record(6, {reinterpret_cast<const uint8_t*>(info.reason.data()), info.reason.size()});
    digest.add_u64(info.code);
    digest.add_u64(info.was_clean);
    digest.add_u64(static_cast<uint64_t>(info.cause));
  }

  bool opened() const { return opened_; }
  bool closed() const { return closed_; }
  Digest digest;

 private:
  void record(uint64_t kind, std::span<const uint8_t> data) {
    ++events_;
    digest.add_u64(kind);
    digest.add_u64(data.size());
    digest.add(data.data(), data.size());
  }
  void react(Opcode type, std::span<const uint8_t> data) {
    if ((opts_ & kOptEcho) && type != Opcode::ping) {
      bool sent = conn_->send(type, data);
      FUZZ_CHECK(sent == (conn_->state() == State::open));
    }
    if ((opts_ & kOptCloseEarly) && events_ == 3) {  // open, then the second peer event
      bool was_open = conn_->state() == State::open;
      bool ok = conn_->close(1000, "bye");
      FUZZ_CHECK(ok == was_open);
      if (ok) FUZZ_CHECK(conn_->state() == State::closing);
    }
  }

  Connection* conn_ = nullptr;
  uint8_t opts_;
  std::size_t max_message_;
  bool opened_ = false;
  bool closed_ = false;
  uint64_t events_ = 0;
};

// Takes (some of) out() into `sink`, as a transport would.
void drain(Connection& conn, std::string& sink, bool partial) {
  const auto& out = conn.out();
  std::size_t n = partial ? (out.size() + 1) / 2 : out.size();
  sink.append(reinterpret_cast<const char*>(out.data()), n);
  conn.consume_out(n);
}

// What we wrote must be a well-formed frame stream: masked iff we are the client, known opcodes,
// small unfragmented control frames. After our Close only Pongs may follow: §5.5.1 forbids data
// frames (and a second Close), while §5.5.2 still requires answering Pings until the peer's Close
// arrives. `skip` is the HTTP part.
void check_output(std::string_view out, std::size_t skip, Role role) {
  FUZZ_CHECK(out.size() >= skip);
  std::span<const uint8_t> s(reinterpret_cast<const uint8_t*>(out.data()) + skip,
                             out.size() - skip);
  bool close_seen = false;
  while (!s.empty()) {
    FrameHeader h;
    std::size_t used = 0;
    FUZZ_CHECK(tether::codec::parse_header(s, h, used) == HeaderStatus::ok);
    if (close_seen) FUZZ_CHECK(h.opcode == Opcode::pong);
    FUZZ_CHECK(h.masked == (role == Role::client));
    FUZZ_CHECK(!h.rsv1 && !h.rsv2 && !h.rsv3);
    FUZZ_CHECK(tether::codec::is_known_opcode(static_cast<uint8_t>(h.opcode)));
    if (tether::codec::is_control(h.opcode)) {
      FUZZ_CHECK(h.fin && h.payload_len <= tether::codec::max_control_payload);
    }
    FUZZ_CHECK(h.payload_len <= s.size() - used);
    if (h.opcode == Opcode::close) close_seen = true;
    s = s.subspan(used + static_cast<std::size_t>(h.payload_len));
  }
}

constexpr std::string_view kClientKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3

std::string server_request() {
  return std::string(
             "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: ") +
         std::string(kClientKey) +
         "\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

// The 101 a server would send for the request sitting in a client's out().
std::string client_response(std::string_view request) {
  constexpr std::string_view field = "Sec-WebSocket-Key: ";
  auto at = request.find(field);
  FUZZ_CHECK(at != std::string_view::npos);
  auto begin = at + field.size();
  auto end = request.find("\r\n", begin);
  FUZZ_CHECK(end != std::string_view::npos);
  std::string_view key = request.substr(begin, end - begin);
  FUZZ_CHECK(base64_decoded_size(key) == 16);
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         compute_accept(key) + "\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
}

struct RunResult {
  uint64_t events = 0;
  std::string out;
  bool closed = false;
};

// One connection in `role`, taken to OPEN, then fed `stream`. Whole: the handshake is fed on its
// own and the stream in one call. Split: the handshake minus its last 1-16 bytes in one call,
// then those bytes and the stream through the splitter.
RunResult run(Role role, uint8_t opts, uint8_t seed, std::span<const uint8_t> stream, bool split) {
  ServerHandshakeConfig server_cfg;
  server_cfg.subprotocols = {"chat"};
  ConnectionConfig cfg;
  cfg.role = role;
  cfg.server = &server_cfg;
  if (opts & kOptSmallLimits) {
    cfg.max_frame = 100;
    cfg.max_message = 200;
  }
  FuzzHandler handler(opts, cfg.max_message);
  CountingRandom rng(seed);
  cfg.rng = &rng;
  Connection conn(cfg, handler);
  handler.attach(&conn);

  std::string out;
  std::string head;
  if (role == Role::server) {
    head = server_request();
  } else {
    ClientHandshakeRequest req;
    req.host = "server.example.com";
    req.target = "/chat";
    uint8_t key[16];
    rng.fill(key);  // CountingRandom: a deterministic key
    req.key = make_client_key(std::span<const uint8_t, 16>(key));
    req.subprotocols = {"chat"};
    conn.start_client(std::move(req));
    drain(conn, out, false);
    head = client_response(out);
  }

  // Mutable copy: receive() unmasks payload bytes in place.
  std::vector<uint8_t> buf;
  std::size_t http_len = 0;
  if (!split) {
    std::vector<uint8_t> h(head.begin(), head.end());
    conn.receive(h);
    FUZZ_CHECK(conn.state() == State::open && handler.opened());
    drain(conn, out, false);
    http_len = out.size();
    buf.assign(stream.begin(), stream.end());
  } else {
    buf.assign(head.begin(), head.end());
    buf.insert(buf.end(), stream.begin(), stream.end());
  }

  Splitter splitter(split ? opts : 0, seed);
  std::size_t pos = 0;
  if (split) {
    // Most of the head in one read (feeding it byte by byte every time only costs speed); its
    // last few bytes go through the splitter with the frames, so reads straddle the boundary.
    std::size_t tail = 1 + seed % 16;
    std::vector<uint8_t> first(buf.begin(),
                               buf.begin() + static_cast<std::ptrdiff_t>(head.size() - tail));
    conn.receive(first);
    FUZZ_CHECK(conn.state() == State::connecting);
    pos = first.size();
  }
  while (pos < buf.size()) {
    std::size_t n = splitter.next(buf.size() - pos);
    conn.receive(std::span<uint8_t>(buf.data() + pos, n));
    pos += n;
    drain(conn, out, (opts & kOptPartialOut) != 0);
  }
  if (opts & kOptEof) {
    conn.receive_eof();
    FUZZ_CHECK(handler.closed());  // EOF always ends the connection with exactly one event
    conn.receive_eof();            // a second EOF is a no-op
  }
  if (handler.closed()) {
    FUZZ_CHECK(conn.state() == State::closed);
    // Nothing more is processed, nothing more is sent.
    std::size_t before = conn.out().size();
    uint8_t extra[] = {0x81, 0x80, 0, 0, 0, 0};  // masked empty text
    uint8_t extra_client[] = {0x81, 0x00};       // unmasked empty text
    if (role == Role::server)
      conn.receive(extra);
    else
      conn.receive(extra_client);
    FUZZ_CHECK(conn.out().size() == before);
    FUZZ_CHECK(!conn.send_text("x"));
  }
  drain(conn, out, false);

  if (split) {
    // The split run fed the HTTP head through the splitter too: find where the 101 (server) or
    // the request (client) ends, to check the frames after it.
    auto end = out.find("\r\n\r\n");
    FUZZ_CHECK(end != std::string::npos);
    http_len = end + 4;
  } else if (role == Role::client) {
    // The client's out() starts with its request; the frames follow it.
    http_len = out.find("\r\n\r\n") + 4;
  }
  check_output(out, http_len, role);

  RunResult r;
  r.events = handler.digest.h;
  r.out = std::move(out);
  r.closed = handler.closed();
  return r;
}

// parse_header on its own: whatever it accepts must re-encode to the same bytes (it only accepts
// minimal lengths), and its size must match header_size().
void check_headers(std::span<const uint8_t> in) {
  // Walk the input as a sequence of frames, as far as it parses.
  for (int frames = 0; frames < 64 && !in.empty(); ++frames) {
    FrameHeader h;
    std::size_t used = 0;
    HeaderStatus st = tether::codec::parse_header(in, h, used);
    if (st == HeaderStatus::need_more) {
      FUZZ_CHECK(in.size() < tether::codec::max_header_size);
      return;
    }
    if (st != HeaderStatus::ok) {
      // Every prefix long enough to hold the length must agree on the error.
      FrameHeader h2;
      std::size_t used2 = 0;
      FUZZ_CHECK(tether::codec::parse_header(in.first(std::min<std::size_t>(in.size(), 10)), h2,
                                             used2) == st);
      return;
    }
    FUZZ_CHECK(used >= 2 && used <= tether::codec::max_header_size && used <= in.size());
    FUZZ_CHECK(used == tether::codec::header_size(h.payload_len, h.masked));
    FUZZ_CHECK((h.payload_len >> 63) == 0);
    uint8_t enc[tether::codec::max_header_size];
    std::size_t n = tether::codec::encode_header(h, enc);
    FUZZ_CHECK(n == used);
    FUZZ_CHECK(std::memcmp(enc, in.data(), n) == 0);
    // Any shorter prefix needs more.
    FrameHeader h3;
    std::size_t used3 = 0;
    FUZZ_CHECK(tether::codec::parse_header(in.first(used - 1), h3, used3) ==
               HeaderStatus::need_more);
    if (h.payload_len > in.size() - used) return;
    in = in.subspan(used + static_cast<std::size_t>(h.payload_len));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::span<const uint8_t> input(data, size);
  check_headers(input);
  if (size < 2) return 0;
  const uint8_t opts = data[0];
  const uint8_t seed = data[1];
  std::span<const uint8_t> stream = input.subspan(2);
  check_headers(stream);

  for (Role role : {Role::server, Role::client}) {
    RunResult whole = run(role, opts, seed, stream, false);
    if ((opts & kOptSplitMask) == 0) continue;
    RunResult split = run(role, opts, seed, stream, true);
    // The same bytes in different reads are the same conversation.
    FUZZ_CHECK(whole.events == split.events);
    FUZZ_CHECK(whole.out == split.out);
    FUZZ_CHECK(whole.closed == split.closed);
  }
  return 0;
}
