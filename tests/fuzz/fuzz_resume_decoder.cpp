// libFuzzer target: the tether.resume.v1 frame decoder (src/resume/frame.cpp, json.cpp;
// docs/resume.md §2) on its own, and an Endpoint (src/resume/endpoint.cpp) fed a stream of
// peer frames mixed with local sends, acks, timers and reconnects.
//
// Input layout:
//   byte 0  options: bit 7 selects the mode; bit 0 is the message type in decoder mode
//   rest    decoder mode (bit 7 clear): one WebSocket message, parsed by parse_frame(),
//           parse_hello() and parse_welcome() as text and as binary;
//           endpoint mode (bit 7 set): records [op][len][len bytes] (see step_endpoint)
//
// Invariants (a violation traps, which libFuzzer reports as a crash):
//  - every failure is Error::malformed_frame (or unsupported_version for hello/welcome) with a
//    reason; ack/hello/welcome/ping/pong are never accepted in a binary message;
//  - numbers are canonical, so an accepted data, ack, ping or pong frame encodes back to exactly
//    the input bytes (decode(encode(x)) == x and encode(decode(b)) == b); the data payload is
//    the view of the bytes after the header;
//  - an accepted hello or welcome, encoded again, parses to the same value;
//  - the endpoint delivers seq = highest received + 1 and nothing else, never moves its counters
//    on an error, and everything it sends parses back to the frame it meant (data carries the
//    current ack, an ack frame the highest received, a pong the ping's token).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "resume/config.hpp"
#include "resume/endpoint.hpp"
#include "resume/error.hpp"
#include "resume/frame.hpp"

namespace {

using namespace tether::resume;
using tether::MessageType;

constexpr uint8_t kOptEndpoint = 0x80;
constexpr uint8_t kOptBinary = 0x01;

std::string_view view(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool printable_token(std::span<const uint8_t> t) {
  if (t.empty() || t.size() > max_ping_token) return false;
  for (uint8_t c : t)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}

// parse_frame on one message: the result, and encode(decode(bytes)) == bytes when accepted.
void check_frame(MessageType type, std::span<const uint8_t> bytes) {
  Frame f;
  std::string why;
  const Error e = parse_frame(type, bytes, f, why);
  if (e != Error::none) {
    FUZZ_CHECK(e == Error::malformed_frame);
    FUZZ_CHECK(!why.empty());
    return;
  }
  FUZZ_CHECK(!bytes.empty());
  switch (f.kind) {
    case FrameKind::data: {
      FUZZ_CHECK(f.seq >= 1);
      uint8_t header[max_data_header];
      const std::size_t n = encode_data_header(f.seq, f.ack, header);
      FUZZ_CHECK(n <= max_data_header && n <= bytes.size());
      FUZZ_CHECK(std::memcmp(header, bytes.data(), n) == 0);
      FUZZ_CHECK(f.payload.data() == bytes.data() + n);
      FUZZ_CHECK(f.payload.size() == bytes.size() - n);
      break;
    }
    case FrameKind::ack: {
      FUZZ_CHECK(type == MessageType::text);
      uint8_t frame[max_ack_frame];
      const std::size_t n = encode_ack(f.ack, frame);
      FUZZ_CHECK(view({frame, n}) == view(bytes));
      break;
    }
    case FrameKind::ping:
    case FrameKind::pong: {
      FUZZ_CHECK(type == MessageType::text);
      FUZZ_CHECK(printable_token(f.payload));
      FUZZ_CHECK(f.payload.data() == bytes.data() + 1);
      const std::string again =
          f.kind == FrameKind::ping ? encode_ping(view(f.payload)) : encode_pong(view(f.payload));
      FUZZ_CHECK(again == view(bytes));
      break;
    }
    case FrameKind::hello:
      FUZZ_CHECK(type == MessageType::text && bytes[0] == 'H');
      break;
    case FrameKind::welcome:
      FUZZ_CHECK(type == MessageType::text && bytes[0] == 'W');
      break;
  }
}

void check_hello(MessageType type, std::span<const uint8_t> bytes) {
  Hello h;
  std::string why;
  const Error e = parse_hello(type, bytes, h, why);
  if (e != Error::none) {
    FUZZ_CHECK(e == Error::malformed_frame || e == Error::unsupported_version);
    FUZZ_CHECK(!why.empty());
    return;
  }
  FUZZ_CHECK(type == MessageType::text && bytes[0] == 'H');
  FUZZ_CHECK(!h.session.empty() || h.last == 0);
  // The canonical encoding of what was parsed parses to the same hello, and is a hello frame.
  const std::string again = encode_hello(h);
  Hello h2;
  std::string why2;
  FUZZ_CHECK(parse_hello(MessageType::text, as_bytes(again), h2, why2) == Error::none);
  FUZZ_CHECK(h2.session == h.session && h2.last == h.last);
  Frame f;
  FUZZ_CHECK(parse_frame(MessageType::text, as_bytes(again), f, why2) == Error::none);
  FUZZ_CHECK(f.kind == FrameKind::hello);
}

void check_welcome(MessageType type, std::span<const uint8_t> bytes) {
  Welcome w;
  std::string why;
  const Error e = parse_welcome(type, bytes, w, why);
  if (e != Error::none) {
    FUZZ_CHECK(e == Error::malformed_frame || e == Error::unsupported_version);
    FUZZ_CHECK(!why.empty());
    return;
  }
  FUZZ_CHECK(type == MessageType::text && bytes[0] == 'W');
  FUZZ_CHECK(!w.session.empty());
  FUZZ_CHECK(w.resumed || w.last == 0);
  const std::string again = encode_welcome(w);
  // Escaping a control character in the reason grows it ("\n" -> "\u000a"): past the size
  // limit the re-encoded welcome is rightly refused, so compare only below it.
  if (again.size() > max_handshake_frame) return;
  Welcome w2;
  std::string why2;
  FUZZ_CHECK(parse_welcome(MessageType::text, as_bytes(again), w2, why2) == Error::none);
  FUZZ_CHECK(w2.session == w.session && w2.resumed == w.resumed && w2.last == w.last &&
             w2.reason == w.reason);
  Frame f;
  FUZZ_CHECK(parse_frame(MessageType::text, as_bytes(again), f, why2) == Error::none);
  FUZZ_CHECK(f.kind == FrameKind::welcome);
}

void decoder_mode(MessageType type, std::span<const uint8_t> bytes) {
  check_frame(type, bytes);
  check_hello(type, bytes);
  check_welcome(type, bytes);
  // The same bytes as the other message type: only data frames are allowed in binary, and a
  // data frame parses the same either way.
  const MessageType other = type == MessageType::text ? MessageType::binary : MessageType::text;
  check_frame(other, bytes);
  Frame a, b;
  std::string why;
  const Error ea = parse_frame(MessageType::text, bytes, a, why);
  const Error eb = parse_frame(MessageType::binary, bytes, b, why);
  if (eb == Error::none) {
    FUZZ_CHECK(b.kind == FrameKind::data);
    FUZZ_CHECK(ea == Error::none && a.kind == FrameKind::data && a.seq == b.seq && a.ack == b.ack &&
               a.payload.data() == b.payload.data() && a.payload.size() == b.payload.size());
  } else if (ea == Error::none) {
    FUZZ_CHECK(a.kind != FrameKind::data);
  }
  Hello h;
  Welcome w;
  FUZZ_CHECK(parse_hello(MessageType::binary, bytes, h, why) != Error::none);
  FUZZ_CHECK(parse_welcome(MessageType::binary, bytes, w, why) != Error::none);
}

// ---- endpoint mode

struct SinkCheck {
  const Endpoint* ep = nullptr;
  std::string_view ping_token;  // set while a ping is being received
  bool allow_data = false;      // send/replay/go_online may emit data frames
  std::size_t frames = 0;
};

void check_sent(SinkCheck& c, MessageType type, std::span<const uint8_t> bytes) {
  ++c.frames;
  Frame f;
  std::string why;
  FUZZ_CHECK(parse_frame(type, bytes, f, why) == Error::none);
  switch (f.kind) {
    case FrameKind::data:
      FUZZ_CHECK(c.allow_data);
      FUZZ_CHECK(c.ep->online());
      FUZZ_CHECK(f.seq >= 1 && f.seq <= c.ep->highest_sent());
      FUZZ_CHECK(f.ack == c.ep->highest_received());
      break;
    case FrameKind::ack:
      FUZZ_CHECK(c.ep->online());
      FUZZ_CHECK(f.ack == c.ep->highest_received());
      break;
    case FrameKind::pong:
      FUZZ_CHECK(!c.ping_token.empty());
      FUZZ_CHECK(view(f.payload) == c.ping_token);
      break;
    default:
      FUZZ_CHECK(false && "endpoint sent a frame kind it never sends");
  }
}

// Records: [op][len][len bytes], until the input runs out (a short last record is truncated).
//   op & 7: 0 receive as text, 1 receive as binary, 2 send text, 3 send binary,
//           4 advance the clock by len * 8 ms and run on_timer when due,
//           5 go_offline, 6 go_online with peer_last = len (when check_peer_last accepts it),
//           7 reset (op bit 3 clear) or restart_keeping_unacked (op bit 3 set)
void endpoint_mode(std::span<const uint8_t> in) {
  Config config;
  config.max_messages = 8;  // small bounds: reach forced-out and wrap-around paths quickly
  config.max_bytes = 256;
  config.window = std::chrono::seconds(1);
  config.ack_delay = std::chrono::milliseconds(50);
  config.ack_every = 4;
  Endpoint ep(config);
  SinkCheck c;
  c.ep = &ep;
  auto sink = [&c](MessageType type, std::span<const uint8_t> bytes) {
    check_sent(c, type, bytes);
  };
  TimePoint now = TimePoint{} + std::chrono::hours(1);
  ep.go_online(0, sink);

  std::size_t pos = 0;
  while (pos < in.size()) {
    const uint8_t op = in[pos++];
    const std::size_t len = pos < in.size() ? in[pos++] : 0;
    const auto bytes = in.subspan(pos, std::min(len, in.size() - pos));
    pos += bytes.size();

    const uint64_t before_received = ep.highest_received();
    const uint64_t before_sent = ep.highest_sent();
    const uint64_t before_acked = ep.peer_acked();
    switch (op & 7) {
      case 0:
      case 1: {
        const MessageType type = (op & 7) == 0 ? MessageType::text : MessageType::binary;
        Frame parsed;
        std::string why;
        const bool is_ping =
            parse_frame(type, bytes, parsed, why) == Error::none && parsed.kind == FrameKind::ping;
        c.ping_token = is_ping ? view(parsed.payload) : std::string_view();
        c.allow_data = false;
        const Received r = ep.receive(type, bytes, now, sink);
        c.ping_token = {};
        FUZZ_CHECK(ep.highest_sent() == before_sent);
        switch (r.kind) {
          case Received::Kind::deliver:
            FUZZ_CHECK(r.seq == before_received + 1);
            FUZZ_CHECK(ep.highest_received() == r.seq);
            FUZZ_CHECK(r.type == type);
            FUZZ_CHECK(r.payload.data() >= bytes.data() &&
                       r.payload.data() + r.payload.size() == bytes.data() + bytes.size());
            break;
          case Received::Kind::duplicate:
            FUZZ_CHECK(r.seq >= 1 && r.seq <= before_received);
            FUZZ_CHECK(ep.highest_received() == before_received);
            break;
          case Received::Kind::ack:
          case Received::Kind::ping:
          case Received::Kind::pong:
            FUZZ_CHECK(ep.highest_received() == before_received);
            break;
          case Received::Kind::error:
            FUZZ_CHECK(r.error != Error::none && !r.message.empty());
            FUZZ_CHECK(ep.highest_received() == before_received);
            break;
          case Received::Kind::welcome:
            FUZZ_CHECK(false && "an Endpoint never reports a welcome");
        }
        FUZZ_CHECK(ep.peer_acked() >= before_acked);
        break;
      }
      case 2:
      case 3:
        c.allow_data = true;
        ep.send((op & 7) == 2 ? MessageType::text : MessageType::binary, bytes, now, sink);
        FUZZ_CHECK(ep.highest_sent() == before_sent + 1);
        break;
      case 4: {
        now += std::chrono::milliseconds(8 * len);
        c.allow_data = false;
        const TimePoint due = ep.next_deadline();
        if (due <= now) ep.on_timer(now, sink);
        break;
      }
      case 5:
        ep.go_offline();
        FUZZ_CHECK(!ep.online());
        break;
      case 6: {
        std::string why;
        ep.expire(now);
        if (ep.check_peer_last(len, why) == Error::none && ep.can_replay_after(len)) {
          c.allow_data = true;
          const uint64_t replayed = ep.go_online(len, sink);
          FUZZ_CHECK(replayed <= ep.highest_sent() - len);
        } else {
          FUZZ_CHECK(!why.empty() || !ep.can_replay_after(len));
        }
        break;
      }
      case 7:
        if (op & 8)
          ep.restart_keeping_unacked();
        else
          ep.reset();
        FUZZ_CHECK(ep.highest_received() == 0 && ep.peer_acked() == 0);
        break;
    }
    FUZZ_CHECK(ep.peer_acked() <= ep.highest_sent());
    FUZZ_CHECK(ep.ack_sent() <= ep.highest_received());
    FUZZ_CHECK(ep.window().size() <= config.max_messages);
    FUZZ_CHECK(ep.window().bytes() <= config.max_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  const std::span<const uint8_t> rest(data + 1, size - 1);
  if (options & kOptEndpoint)
    endpoint_mode(rest);
  else
    decoder_mode(options & kOptBinary ? MessageType::binary : MessageType::text, rest);
  return 0;
}
