// RFC 7692 permessage-deflate: parameter negotiation for both roles (§7.1) and the per-message
// payload transformation (§7.2) over zlib. Sans-I/O: bytes in, bytes out; no socket, no clock.
// zlib itself stays in the .cpp (its z_stream is only forward-declared here).
//
// Memory (§7.1.1): a z_stream costs ~40 KiB to inflate and ~260 KiB to deflate at 15 bits. When
// a direction resets its context after every message, nothing needs to survive between messages,
// so that direction uses streams shared by the whole thread (one event loop): one compressor per
// (window, level) and a small pool of inflaters, normally of one. Only a direction that keeps its
// context (takeover) owns a stream per connection, created on the first compressed message.
//
//   // server: negotiation happens inside protocol::server_handshake via DeflateNegotiator
//   PerMessageDeflate pmd(params, Side::server, options.level);
//   pmd.compress(message, frame_payload);                    // then send with RSV1 set
//   pmd.inflate(chunk, message, max_message);                // per payload chunk, any split
//   pmd.finish_message(message, max_message);                // at the final frame
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/handshake.hpp"
#include "tether/options.hpp"

struct z_stream_s;  // zlib's stream (zlib.h), opaque here

namespace tether::extensions {

inline constexpr std::string_view kPermessageDeflate = "permessage-deflate";

enum class Side : uint8_t { server, client };

// What the two ends agreed on (§7.1), stated as what each end will actually do: e.g. a client
// that offered client_no_context_takeover resets its compressor even when the response does not
// repeat it (§7.1.1.2), so the client's params say so.
struct DeflateParams {
  bool server_no_context_takeover = false;  // the server resets its compressor per message
  bool client_no_context_takeover = false;  // the client resets its compressor per message
  int server_max_window_bits = 15;          // the server's compression window (8..15)
  int client_max_window_bits = 15;          // the client's compression window (8..15)
  bool operator==(const DeflateParams&) const = default;
};

// Client role: the Sec-WebSocket-Extensions element to send (§7.1), e.g.
// "permessage-deflate; client_max_window_bits; server_no_context_takeover". Always offers
// client_max_window_bits (bare when 15) so the server may shrink our window (§7.1.2.2).
std::string client_offer(const DeflateOptions& options);

struct ServerAgreement {
  DeflateParams params;
  std::string response;  // the element for the 101's Sec-WebSocket-Extensions
};

// Server role, one offer (§7.1): false declines it (`why`, when given, says which rule), e.g.
// unknown, duplicate or invalid parameters, or server_max_window_bits=8 (zlib cannot deflate
// with a 256-byte window). The offer's name is not checked.
bool server_accept_offer(const protocol::ExtensionOffer& offer, const DeflateOptions& options,
                         ServerAgreement& out, std::string* why = nullptr);
// Server role, all offers in the client's preference order (§5: the first acceptable one wins);
// elements with other names are skipped. nullopt: every permessage-deflate offer was declined.
std::optional<ServerAgreement> server_negotiate(std::span<const protocol::ExtensionOffer> offers,
                                                const DeflateOptions& options);

struct ClientAgreement {
  bool ok = false;
  DeflateParams params;
  std::string error;  // why the response must fail the connection (§7.1)
};
// Client role: validates the server's response element against the offer it answers (§7.1:
// unknown, duplicate, invalid or unoffered parameters fail the connection, and so does
// client_max_window_bits=8, which zlib cannot compress with).
ClientAgreement client_accept_response(const protocol::ExtensionOffer& response,
                                       const protocol::ExtensionOffer& offered);
// The same against client_offer(options), the offer protocol::Connection sends.
ClientAgreement client_accept_response(const protocol::ExtensionOffer& response,
                                       const DeflateOptions& options);

// Server role adapter for protocol::server_handshake: accepts the first acceptable
// permessage-deflate offer and remembers what was agreed. One per handshake.
class DeflateNegotiator final : public protocol::ExtensionNegotiator {
 public:
  explicit DeflateNegotiator(const DeflateOptions& options) : options_(options) {}
  std::string_view name() const override { return kPermessageDeflate; }
  bool accept_offer(const protocol::ExtensionOffer& offer, std::string& response_element) override;
  const std::optional<DeflateParams>& agreed() const { return agreed_; }

 private:
  const DeflateOptions& options_;
  std::optional<DeflateParams> agreed_;
};

enum class InflateStatus : uint8_t {
  ok,
  too_big,    // the message inflates to more than the limit; inflating stopped at limit + 1 bytes
  corrupt,    // not valid DEFLATE data, or the message does not end on a block boundary
  no_memory,  // zlib could not allocate its state
};

// The §7.2 transformation for one connection. Not thread-safe; use it on the connection's thread.
class PerMessageDeflate {
 public:
  // `level` is zlib's 1..9 (clamped). Windows are clamped to 9..15 for compressing.
  PerMessageDeflate(const DeflateParams& params, Side side, int level = 6);
  ~PerMessageDeflate();
  PerMessageDeflate(const PerMessageDeflate&) = delete;
  PerMessageDeflate& operator=(const PerMessageDeflate&) = delete;

  // §7.2.1: compresses one whole message, appending the payload to `out` without the trailing
  // 00 00 ff ff. false (and `out` unchanged) when zlib fails; the message then goes out plain.
  bool compress(std::span<const uint8_t> message, std::vector<uint8_t>& out);

  // §7.2.2: inflates the next piece of a compressed message's payload (any split, across
  // frames), appending to `out`. The message may be at most `limit` bytes (out.size() counts):
  // inflating stops as soon as it produces one byte more, and `out` never holds more than
  // limit + 1 bytes or grows its capacity past that. Any status but ok ends the message.
  InflateStatus inflate(std::span<const uint8_t> payload, std::vector<uint8_t>& out,
                        std::size_t limit);
  // The message's last frame has been fed: inflates the 00 00 ff ff tail, checks the data ended
  // on a block boundary, and resets the context if the peer does not keep it.
  InflateStatus finish_message(std::vector<uint8_t>& out, std::size_t limit);
  // Drops a message in progress (the connection failed): returns a shared inflater to the pool.
  void abort_message();

  const DeflateParams& params() const { return params_; }
  // Our compressor starts fresh for each message (our direction's *_no_context_takeover).
  bool compressor_resets() const { return own_reset_; }
  // The peer's compressor does (the other direction's *_no_context_takeover).
  bool peer_resets() const { return peer_reset_; }
  int compress_window_bits() const { return own_window_; }
  // Compressors that start fresh each message with the same window and level turn a message
  // into the same bytes, so a fan-out can compress it once for all of them: equal keys, equal
  // output. -1 when ours keeps its context (its output depends on this connection's history).
  int shared_key() const {
    return own_reset_ && !deflate_broken_ ? (level_ << 8) | own_window_ : -1;
  }

 private:
  z_stream_s* inflater();  // acquires one for the message in progress
  InflateStatus run_inflate(z_stream_s* s, std::span<const uint8_t> in, std::vector<uint8_t>& out,
                            std::size_t limit);
  void release_inflater();

  DeflateParams params_;
  int level_;
  int own_window_;
  bool own_reset_;
  bool restarted_ = false;  // the message's data ended with a BFINAL block and nothing after
  bool peer_reset_;
  bool deflate_broken_ = false;  // a kept context failed mid-message: never compress again
  bool in_message_ = false;
  bool fed_ = false;                // the message in progress had payload bytes
  z_stream_s* deflater_ = nullptr;  // our own compressor (context takeover only)
  z_stream_s* inflater_ = nullptr;  // own (peer keeps context) or borrowed for one message
};

// zlib streams currently allocated in the process (shared and per-connection), for tests and
// metrics: steady state with no context takeover is one inflater and one deflater per thread.
struct ZlibStreamCounts {
  long deflaters = 0;
  long inflaters = 0;
};
ZlibStreamCounts live_zlib_streams();

}  // namespace tether::extensions
