// Client side of tether.resume.v1 (docs/resume.md §3.2): builds the hello, handles the welcome
// (resumed: send again what the server has not received; not resumed: renumber and send again
// every unacknowledged message in the fresh session) and remembers the session across
// reconnects. Lives as long as the client, not the connection. Sans-I/O like Endpoint.
//
// Usage (client glue):
//   on open (subprotocol tether.resume.v1 accepted):  cs.open(now, sink);
//   every message:   auto r = cs.receive(type, bytes, now, sink);
//                    deliver -> app; welcome -> report r.outcome / r.reason; error -> fail 1002
//   application send (connected or not):  cs.send(type, bytes, now, sink);
//   connection lost (anything but the ends below): cs.disconnected(now); reconnect later
//   we close with 1000 / the server closes with 1000:  cs.end();
//   we fail it with 1002 (or get 1002):               cs.abandon();
//   timer: cs.next_deadline() / cs.on_timer(now, sink)
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "resume/config.hpp"
#include "resume/endpoint.hpp"
#include "resume/session_id.hpp"

namespace tether::resume {

class ClientSession {
 public:
  enum class State : uint8_t {
    offline,           // no connection; sends are stored
    awaiting_welcome,  // hello sent; sends are stored
    established,       // welcome handled; sends go out at once
  };

  explicit ClientSession(const Config& config);

  // The WebSocket opened with the tether.resume.v1 subprotocol: sends the hello. Asks to
  // resume the current session unless this client itself forced out messages the server has
  // not acknowledged (then it asks for a new session and reports resume_failed, reason
  // "replay window exceeded (client)").
  void open(TimePoint now, FrameSink sink);

  // Every message from the server. Before the welcome only a welcome is valid.
  Received receive(MessageType type, std::span<const uint8_t> bytes, TimePoint now, FrameSink sink);

  // Application message: sent at once when established, otherwise stored and sent after the
  // next welcome (the window doubles as the offline queue, with the same bounds).
  void send(MessageType type, std::span<const uint8_t> payload, TimePoint now, FrameSink sink) {
    endpoint_.send(type, payload, now, sink);
  }

  // The connection is gone; the session is kept for the next open().
  void disconnected(TimePoint now);
  // The session is over (a 1000 close either way): forget its id, numbering and messages.
  void end();
  // Give up the session but keep unacknowledged messages for the next one (at-least-once):
  // after a protocol error, when the session state can no longer be trusted.
  void abandon();

  TimePoint next_deadline() const { return endpoint_.next_deadline(); }
  void on_timer(TimePoint now, FrameSink sink) { endpoint_.on_timer(now, sink); }

  State state() const { return state_; }
  const SessionId& session() const { return session_; }
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Received on_welcome(MessageType type, std::span<const uint8_t> bytes, FrameSink sink);

  Endpoint endpoint_;
  SessionId session_;
  State state_ = State::offline;
  bool had_session_ = false;   // a session existed when the hello went out
  bool asked_resume_ = false;  // the hello named it
  std::string local_reason_;   // we gave the session up ourselves
};

}  // namespace tether::resume
