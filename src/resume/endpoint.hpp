// One end of a resumable session (docs/resume.md §3-§5), the same for both roles once the
// opening exchange is over: numbers outgoing messages, keeps them in the replay window until
// the peer acks them, checks incoming numbers (duplicates dropped, gaps are errors) and decides
// when to acknowledge. Sans-I/O: frames to send go to a FrameSink passed into each call, time
// is a parameter, no clock or socket in here.
//
// Usage (the glue of one connection):
//   ep.send(MessageType::text, bytes, now, sink);              // application send
//   auto r = ep.receive(type, message, now, sink);             // every message received
//   if (r.kind == Received::Kind::deliver) app(r.type, r.payload);
//   if (r.kind == Received::Kind::error) fail(close_code(r.error), r.message);
//   timer.arm(ep.next_deadline());  ... on expiry: ep.on_timer(now, sink);
// The opening exchange and reconnects are driven by SessionStore (server) and ClientSession
// (client), which call go_online() / go_offline().
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "resume/config.hpp"
#include "resume/error.hpp"
#include "resume/frame.hpp"
#include "resume/window.hpp"

namespace tether::resume {

// What one received message turned out to be. Small value type; `message` and `reason` only
// allocate on the rare paths that fill them.
struct Received {
  enum class Kind : uint8_t {
    deliver,    // an application message, in order: hand `payload` to the application
    duplicate,  // already delivered (seq <= highest received): dropped, counted
    ack,        // a standalone ack: nothing to deliver
    welcome,    // ClientSession only: the opening exchange finished (see `outcome`)
    ping,       // a P<token>: already answered with Q<token> through the sink; `payload` = token
    pong,       // a Q<token> (the answer to a P we sent): `payload` = token
    error,      // a peer fault: fail the connection with close_code(error), reason `message`
  };
  enum class Outcome : uint8_t {
    new_session,    // no session was asked for
    resumed,        // the old session continues: nothing lost, nothing twice
    resume_failed,  // a fresh session replaced the old one (`reason` says why)
  };
  Kind kind = Kind::ack;
  MessageType type = MessageType::text;    // deliver
  uint64_t seq = 0;                        // deliver, duplicate
  std::span<const uint8_t> payload;        // deliver: a view into the received message;
                                           // ping/pong: the token
  Outcome outcome = Outcome::new_session;  // welcome
  uint64_t replayed = 0;                   // welcome: our messages sent again
  std::string reason;                      // welcome: why not resumed
  Error error = Error::none;               // error
  std::string message;                     // error: what exactly was wrong
};

struct EndpointStats {
  uint64_t sent = 0;        // application messages numbered (online or not)
  uint64_t delivered = 0;   // in-order messages handed to the application
  uint64_t duplicates = 0;  // received again and dropped
  uint64_t replayed = 0;    // data frames sent again after a reconnect
  uint64_t acks_sent = 0;   // standalone ack frames
};

class Endpoint {
 public:
  explicit Endpoint(const Config& config);

  // Numbers the message, stores it in the window and, when online, sends "M<seq>,<ack>;payload"
  // (which also acknowledges everything received so far). Offline it is only stored, and goes
  // out with the replay after the next successful resume.
  void send(MessageType type, std::span<const uint8_t> payload, TimePoint now, FrameSink sink);

  // One received message (data, ack, ping or pong; hello/welcome here are unexpected_frame).
  // `frame` must stay valid while the returned payload view is used. May send a standalone ack
  // through `sink` (ack_every reached), and answers a ping with its pong through `sink` (online
  // or not: P/Q are not part of the numbered stream).
  Received receive(MessageType type, std::span<const uint8_t> frame, TimePoint now, FrameSink sink);
  // A parsed ping or pong frame (valid at any time, also before the opening exchange): a ping
  // is answered with its pong through `sink`. Touches no session state.
  static Received control(const Frame& frame, FrameSink sink);

  // The earliest of: the pending ack's deadline (online only), the oldest stored message's
  // expiry. TimePoint::max() when nothing is pending.
  TimePoint next_deadline() const;
  // Sends the standalone ack when due and forces out messages older than the window.
  void on_timer(TimePoint now, FrameSink sink);

  // Sends stored messages with seq > last again, in order, with their original numbers and the
  // current ack. Returns how many. Nothing is sent while offline.
  uint64_t replay_after(uint64_t last, FrameSink sink);

  // ---- lifecycle, driven by SessionStore and ClientSession
  void go_offline();
  // A connection carries the session again: the peer has our messages through `peer_last`
  // (released from the window) and knows ours through highest_received() (told in the
  // hello/welcome). Re-sends the rest; returns how many.
  uint64_t go_online(uint64_t peer_last, FrameSink sink);
  // Whether a peer's `last` (hello/welcome) is consistent: not above what we sent, not below
  // what it already acknowledged. Error::invalid_ack with `why` otherwise.
  Error check_peer_last(uint64_t last, std::string& why) const;
  // Whether everything after `last` is still in the window (call expire(now) first).
  bool can_replay_after(uint64_t last) const { return last >= window_.lost_through(); }
  void expire(TimePoint now) { window_.expire(now); }
  // See ReplayWindow::hold (a client between hello and welcome).
  void hold_window(bool on) { window_.hold(on); }
  // Fresh session: numbering restarts at 1 both ways, the window is emptied.
  void reset();
  // A session carried on by another node (Redis, docs/deploy.md): the peer has acknowledged
  // everything through `acked`, we sent through `highest_sent` and received through
  // `highest_received`; the unacknowledged messages are then given with stash(), in order.
  void restore(uint64_t acked, uint64_t highest_sent, uint64_t highest_received);
  void stash(uint64_t seq, MessageType type, std::span<const uint8_t> payload, TimePoint now) {
    window_.push(seq, type, payload, now);
  }
  // Fresh session, at-least-once: numbering restarts at 1 both ways and the unacknowledged
  // messages are renumbered 1..k, to be sent again by go_online(0, ...).
  void restart_keeping_unacked();

  bool online() const { return online_; }
  uint64_t next_seq() const { return next_seq_; }
  uint64_t highest_sent() const { return next_seq_ - 1; }
  uint64_t highest_received() const { return highest_received_; }
  uint64_t peer_acked() const { return peer_acked_; }
  uint64_t ack_sent() const { return ack_sent_; }
  bool ack_pending() const { return ack_due_ != TimePoint::max(); }
  const ReplayWindow& window() const { return window_; }
  const EndpointStats& stats() const { return stats_; }
  const Config& config() const { return config_; }

 private:
  bool apply_ack(uint64_t ack, Received& r);
  void emit_data(uint64_t seq, MessageType type, std::span<const uint8_t> a,
                 std::span<const uint8_t> b, FrameSink sink);
  void emit_ack(FrameSink sink);
  void trim_scratch();

  Config config_;
  ReplayWindow window_;
  bool online_ = false;
  uint64_t next_seq_ = 1;
  uint64_t highest_received_ = 0;
  uint64_t peer_acked_ = 0;  // highest cumulative ack received from the peer
  uint64_t ack_sent_ = 0;    // highest ack the peer has been told
  TimePoint ack_due_ = TimePoint::max();
  std::vector<uint8_t> scratch_;  // the frame being handed to the sink, reused
  EndpointStats stats_;
};

}  // namespace tether::resume
