// tether.resume.v1 frames (docs/resume.md §2): every WebSocket message on a resume connection
// is exactly one of
//   M<seq>,<ack>;<payload>   data, text or binary (the application's type), payload unchanged
//   A<ack>                   standalone cumulative ack, text
//   H{...}                   hello (client -> server, first message), text
//   W{...}                   welcome (server -> client, answer to the hello), text
//   P<token> / Q<token>      application ping / its answer, text, either side at any time
//                            after the WebSocket opens; not numbered, acked or stored
// Numbers are canonical unsigned decimals (no sign, no leading zero, at most 2^64-1). The
// header is ASCII, so a text message stays valid UTF-8.
// No state, no clock: encoders write into caller buffers, parsers return views into the input.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include "resume/error.hpp"
#include "resume/session_id.hpp"
#include "tether/message.hpp"

namespace tether::resume {

using tether::MessageType;

inline constexpr std::string_view subprotocol = "tether.resume.v1";

// 'M' + 20 digits + ',' + 20 digits + ';'
inline constexpr std::size_t max_data_header = 43;
// 'A' + 20 digits
inline constexpr std::size_t max_ack_frame = 21;
// Hello and welcome are a few dozen bytes; anything longer is refused before it is parsed.
inline constexpr std::size_t max_handshake_frame = 4096;
// P/Q token: 1..64 printable ASCII characters without spaces (0x21-0x7E).
inline constexpr std::size_t max_ping_token = 64;

// Where frames to send go: called once per resume frame, which is one whole WebSocket message
// of the given type. The bytes are valid only during the call (they live in a reused buffer).
// A non-owning callable reference (like C++26 std::function_ref): no allocation, pass a lambda
// straight into the call that needs it and never store the sink.
class FrameSink {
 public:
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, FrameSink> &&
           std::invocable<F&, MessageType, std::span<const uint8_t>>) FrameSink(F&& f)
  noexcept  // NOLINT: implicit on purpose, so call sites pass a lambda
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, MessageType type, std::span<const uint8_t> bytes) {
          (*static_cast<std::remove_reference_t<F>*>(obj))(type, bytes);
        }) {}

  // A sink that drops everything (an offline endpoint).
  static FrameSink discard() { return FrameSink(); }

  void operator()(MessageType type, std::span<const uint8_t> bytes) const {
    call_(obj_, type, bytes);
  }

 private:
  FrameSink() : obj_(nullptr), call_([](void*, MessageType, std::span<const uint8_t>) {}) {}
  void* obj_;
  void (*call_)(void*, MessageType, std::span<const uint8_t>);
};

enum class FrameKind : uint8_t { data, ack, hello, welcome, ping, pong };

// A parsed data or ack frame; for hello and welcome only `kind` is set (see parse_hello and
// parse_welcome, which only the opening exchange needs).
struct Frame {
  FrameKind kind = FrameKind::data;
  uint64_t seq = 0;                  // data: >= 1
  uint64_t ack = 0;                  // data and ack
  std::span<const uint8_t> payload;  // data: view into the parsed bytes; ping/pong: the token
};

struct Hello {
  SessionId session;  // empty: start a new session
  uint64_t last = 0;  // highest server seq received in order (0 without a session)
};

struct Welcome {
  SessionId session;  // never empty
  bool resumed = false;
  uint64_t last = 0;   // highest client seq received in order (0 when not resumed)
  std::string reason;  // why not resumed; "" when resumed
};

// Writes the data header for (seq, ack) into `out` (at least max_data_header bytes); returns
// its length. The payload follows it unchanged.
std::size_t encode_data_header(uint64_t seq, uint64_t ack, uint8_t* out);
// Writes "A<ack>" into `out` (at least max_ack_frame bytes); returns its length.
std::size_t encode_ack(uint64_t ack, uint8_t* out);
// "P<token>" / "Q<token>" (the token must be valid: 1..max_ping_token bytes 0x21-0x7E).
std::string encode_ping(std::string_view token);
std::string encode_pong(std::string_view token);
// Text frames, byte for byte as in docs/resume.md.
std::string encode_hello(const Hello& hello);
std::string encode_welcome(const Welcome& welcome);

// Classifies one message and parses data/ack frames. Error::none on success; otherwise
// Error::malformed_frame with `why` saying what is wrong (e.g. "data frame: leading zero in
// sequence number").
Error parse_frame(MessageType type, std::span<const uint8_t> bytes, Frame& out, std::string& why);
// The whole hello / welcome message, leading 'H' / 'W' included. Errors: malformed_frame,
// unsupported_version.
Error parse_hello(MessageType type, std::span<const uint8_t> bytes, Hello& out, std::string& why);
Error parse_welcome(MessageType type, std::span<const uint8_t> bytes, Welcome& out,
                    std::string& why);

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace tether::resume
