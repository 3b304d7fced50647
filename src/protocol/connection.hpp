// Sans-I/O RFC 6455 connection (wsproto's shape, nghttp2's callbacks): bytes in through
// receive(), events out through a Handler, bytes to write accumulate in out().
// No socket, clock or thread here. Peer faults never throw: they become a close with the
// right code (§7.1.7 "Fail the WebSocket Connection") and an on_close event.
//
// States (§4, §7): connecting -> open -> closing -> closed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/frame.hpp"
#include "codec/read_state.hpp"
#include "codec/utf8.hpp"
#include "extensions/permessage_deflate.hpp"
#include "loop/buffer_pool.hpp"
#include "loop/io_handler.hpp"
#include "protocol/handshake.hpp"
#include "protocol/http.hpp"
#include "protocol/names.hpp"
#include "protocol/out_buffer.hpp"
#include "protocol/random.hpp"
#include "tether/close_info.hpp"
#include "tether/options.hpp"

namespace tether::protocol {

enum class Role : uint8_t { server, client };
enum class State : uint8_t { connecting, open, closing, closed };

struct ConnectionConfig {
  Role role = Role::server;
  std::size_t max_frame = 16u << 20;  // §10.4: bound what one peer can make us buffer
  std::size_t max_message = 16u << 20;
  HttpLimits http;
  const ServerHandshakeConfig* server = nullptr;  // server role: handshake policy
  // permessage-deflate (RFC 7692): nullptr or !enabled is off. Server: negotiated from the
  // request's offers; client: start_client() offers it. Must outlive the connection.
  const DeflateOptions* deflate = nullptr;
  // The loop's buffer pools: send queues and reassembled messages take memory from there only
  // while bytes are in flight. nullptr: each connection keeps its own buffers.
  loop::BufferPools* pools = nullptr;
  // Client role: where mask keys come from (§5.3); nullptr: a per-thread SystemRandom.
  // Unused by servers.
  Random* rng = nullptr;
  // Where request targets and subprotocols are interned (the loop's); nullptr: each connection
  // keeps its own.
  NameTable* names = nullptr;
};

// Events. Callbacks may call send()/close() on the connection re-entrantly.
// A Handler is also a loop::IoHandler (on_io does nothing unless overridden) so that an object
// which is both, a stream, has one vtable pointer instead of two. The protocol never calls on_io.
class Handler : public loop::IoHandler {
 public:
  void on_io(uint32_t) override {}
  virtual void on_open() {}
  // One whole message. `data` is valid only during the call.
  virtual void on_message(codec::Opcode type, std::span<const uint8_t> data) = 0;
  virtual void on_ping(std::span<const uint8_t>) {}  // already answered with a pong
  virtual void on_pong(std::span<const uint8_t>) {}
  // The connection is over at the WebSocket level (close handshake done, failed, or EOF).
  // After this, out() may still hold a final close frame or HTTP response to write, then the
  // transport should be closed (see should_close_transport()).
  virtual void on_close(const CloseInfo& info) = 0;
  // Server role: a plain HTTP request (not an upgrade). Fill `response` with a complete HTTP
  // response; the transport is closed after it is written.
  virtual void on_http_request(const HttpHead& request, std::string& response);
};

class Connection {
 public:
  // `config` is shared by every connection of a server loop (or a client), not copied: it
  // must outlive the connection.
  Connection(const ConnectionConfig& config, Handler& handler);
  Connection(ConnectionConfig&&, Handler&) = delete;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Client role: queue the opening handshake request (§4.1).
  void start_client(ClientHandshakeRequest request);

  // Feeds bytes from the transport. Payload bytes are unmasked in place, so `data` is mutable.
  void receive(std::span<uint8_t> data);
  // The transport reached EOF or failed: §7.1.5/§7.2.1, the close is abnormal (1006) unless the
  // closing handshake had completed.
  void receive_eof(Cause cause = Cause::network_error, std::string_view why = {});

  // Sends one message (one frame) or one fragment. false when not open (nothing queued).
  // With permessage-deflate negotiated, a whole message (fin, not a fragment sequence) of at
  // least DeflateOptions::threshold bytes is compressed (RSV1); fragments go out uncompressed.
  bool send(codec::Opcode type, std::span<const uint8_t> payload, bool fin = true) {
    // Most sends, framed here: a whole text or binary message under 64 KiB from a server (no
    // mask, §5.1) with no deflate to consider. The rest (fragments, masking, compression, 64-bit
    // lengths): send_any().
    const std::size_t n = payload.size();
    if (config_.role != Role::server || !fin || out_in_message_ || deflate_ || n > 0xFFFF ||
        state_ != State::open || (type != codec::Opcode::text && type != codec::Opcode::binary))
      return send_any(type, payload, fin);
    const std::size_t hs = codec::header_size(n, false);
    uint8_t* p = out_.extend(config_.pools, hs + n);
    // FIN, no RSV bit
    codec::encode_short_header(static_cast<uint8_t>(0x80 | static_cast<uint8_t>(type)), n, p);
    if (n) std::memcpy(p + hs, payload.data(), n);
    return true;
  }
  bool send_text(std::string_view s) { return send(codec::Opcode::text, as_bytes(s)); }
  // Fan-out (pub/sub, broadcast): a server frame is the same bytes for every connection (no
  // mask, §5.1), so it is encoded once with encode_server_frame() and appended to each
  // connection with send_encoded(). false when not open or inside an outgoing fragmented message.
  // Such frames are never compressed (RSV1 clear is always valid, RFC 7692 §6).
  static void encode_server_frame(codec::Opcode type, std::span<const uint8_t> payload,
                                  std::vector<uint8_t>& out);
  bool send_encoded(std::span<const uint8_t> frame);
  // Fan-out with permessage-deflate: connections with the same key (>= 0) compress a message to
  // the same bytes, so encode_shared_deflated() on one of them gives a frame (RSV1) that
  // send_encoded() may queue on all of them. -1: this one cannot share for a message of
  // `size` bytes (no deflate negotiated, our compressor keeps its context, under the threshold).
  int shared_deflate_key(std::size_t size) const;
  // false: compression failed or did not pay; send the plain frame.
  bool encode_shared_deflated(codec::Opcode type, std::span<const uint8_t> payload,
                              std::vector<uint8_t>& out);
  // Server, zero-copy reply: while on_message runs for a frame that was the last one of its
  // read, a data message whose payload is that message (or a prefix of it, same start) can be
  // framed where it lies: its header goes into the bytes in front of it (the received frame's
  // header, consumed). Returns the whole frame, in the caller's receive buffer, for the caller to
  // write before that buffer is reused, counting as sent; empty when it cannot be done that way
  // (not that payload, something already queued in out(), deflate would compress it, not open):
  // then send() as usual. Once per delivered message.
  std::span<const uint8_t> frame_in_place(codec::Opcode type, std::span<const uint8_t> payload) {
    if (!config_.pools || config_.pools->loan.owner != this) return {};  // nothing lent to us
    return frame_lent(type, payload);
  }
  // The transport wrote only the start of a frame_in_place() frame: queue the rest (copied), in
  // front of nothing (out() was empty), as bytes no priority frame may go ahead of.
  void queue_frame_tail(std::span<const uint8_t> rest) {
    out_.append(config_.pools, rest.data(), rest.size());
    out_.mark_boundary(config_.pools);
  }
  bool ping(std::span<const uint8_t> payload = {});
  bool pong(std::span<const uint8_t> payload = {});
  // Starts the closing handshake (§7.1.2). Invalid codes are local misuse: returns false.
  bool close(uint16_t code = 1000, std::string_view reason = {}, Cause cause = Cause::local_close);
  // Fails the connection ourselves (§7.1.7): sends a close with `code` and ends at once.
  void fail(uint16_t code, std::string_view reason, Cause cause);

  // The transport could not write everything (EAGAIN): pings/pongs now go ahead of queued data.
  void set_transport_blocked(bool blocked) { transport_blocked_ = blocked; }
  const OutBuffer& out() const { return out_; }
  // The transport wrote the first `n` bytes of out().
  void consume_out(std::size_t n) { out_.consume(config_.pools, n); }
  State state() const { return state_; }
  const ConnectionConfig& config() const { return config_; }
  Role role() const { return config_.role; }
  // True once nothing more will be read or sent: write out() and close the transport.
  bool should_close_transport() const { return close_transport_; }
  // The cause our own close() was given (what a close-handshake timeout reports).
  Cause close_cause() const { return close_cause_; }
  std::string_view subprotocol() const { return NameTable::subprotocol(names_); }
  std::string_view path() const { return NameTable::path(names_); }
  // permessage-deflate was negotiated in the opening handshake.
  bool deflate_active() const { return deflate_ != nullptr; }
  // Server role: the HTTP error status answered instead of 101 (400, 403, 426, 431, 503...) when
  // the opening handshake was refused; 0 otherwise (metrics count refusals by status).
  int rejected_status() const { return rejected_status_; }

  static std::span<const uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
  }

 private:
  enum class ReadState : uint8_t { http, header, payload, done };

  std::size_t receive_http(std::span<uint8_t> data);
  bool begin_frame();  // validate header_, set up payload state; false if failed
  void payload_chunk(uint8_t* p, std::size_t n, bool whole_frame_here);
  bool whole_frame_fast(std::span<uint8_t> data, std::size_t& pos);
  void end_frame();
  void handle_control();
  bool inflated(extensions::InflateStatus st, std::size_t before);  // false if failed
  void deliver_message(codec::Opcode type, std::span<const uint8_t> data);
  bool send_compressed(codec::Opcode type, std::span<const uint8_t> payload);
  bool send_any(codec::Opcode type, std::span<const uint8_t> payload, bool fin);
  std::span<const uint8_t> frame_lent(codec::Opcode type, std::span<const uint8_t> payload);
  const DeflateOptions* deflate_options() const;
  void write_frame(codec::Opcode op, bool fin, std::span<const uint8_t> payload, bool rsv1 = false);
  void finish(const CloseInfo& info);
  void take_message_buffer() {
    if (rx_->msg.capacity() == 0 && config_.pools) rx_->msg = config_.pools->message.take();
  }
  void receive_frames(std::span<uint8_t> data);
  void release_rx();  // back to the pool if nothing is in progress

  const ConnectionConfig& config_;
  Handler& handler_;
  State state_ = State::connecting;
  ReadState rstate_ = ReadState::http;
  bool close_transport_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  bool out_in_message_ = false;
  bool transport_blocked_ = false;  // we sent a non-final fragment (§5.4)
  uint16_t rejected_status_ = 0;
  Cause close_cause_ = Cause::remote_close;  // what our close() was given

  // The frame or message being read: borrowed from the loop's pool while one is in progress
  // (receive() takes it, gives it back when a read ends between messages), own otherwise.
  std::unique_ptr<codec::FrameReadState> rx_;

  // permessage-deflate, when negotiated
  std::unique_ptr<extensions::PerMessageDeflate> deflate_;

  // The opening handshake's state, dropped once it is over: the head parser and (client) the
  // request it answers.
  struct Handshake {
    Handshake(HttpHeadParser::Kind kind, const HttpLimits& limits) : parser(kind, limits) {}
    HttpHeadParser parser;
    std::unique_ptr<ClientHandshakeRequest> request;
  };
  std::unique_ptr<Handshake> hs_;
  // The request target and the subprotocol the handshake settled (interned, see names.hpp).
  const Names* names_ = nullptr;
  void set_names(std::string_view path, std::string_view subprotocol);
  void drop_names();

  OutBuffer out_;
};

}  // namespace tether::protocol
