#include "resume/client_session.hpp"

namespace tether::resume {

namespace {
Received failure(Error e, std::string message) {
  Received r;
  r.kind = Received::Kind::error;
  r.error = e;
  r.message = std::move(message);
  return r;
}
}  // namespace

ClientSession::ClientSession(const Config& config) : endpoint_(config) {}

void ClientSession::open(TimePoint now, FrameSink sink) {
  if (state_ != State::offline) disconnected(now);  // a missed disconnect: same thing
  endpoint_.expire(now);
  Hello hello;
  local_reason_.clear();
  // Everything after what the server acknowledged must still be here, or the server could
  // resume while we cannot send it again.
  if (!session_.empty() && !endpoint_.can_replay_after(endpoint_.peer_acked()))
    local_reason_ = "replay window exceeded (client)";
  else
    hello = Hello{session_, endpoint_.highest_received()};
  had_session_ = !session_.empty();
  asked_resume_ = !hello.session.empty();
  endpoint_.hold_window(true);
  state_ = State::awaiting_welcome;
  const std::string text = encode_hello(hello);
  sink(MessageType::text, as_bytes(text));
}

Received ClientSession::receive(MessageType type, std::span<const uint8_t> bytes, TimePoint now,
                                FrameSink sink) {
  switch (state_) {
    case State::offline:
      return failure(Error::unexpected_frame, "message while no connection is open");
    case State::awaiting_welcome: {
      Received r = on_welcome(type, bytes, sink);  // or a P/Q, answered
      if (r.kind == Received::Kind::welcome) endpoint_.hold_window(false);
      return r;
    }
    case State::established:
      break;
  }
  return endpoint_.receive(type, bytes, now, sink);
}

Received ClientSession::on_welcome(MessageType type, std::span<const uint8_t> bytes,
                                   FrameSink sink) {
  Frame frame;
  std::string why;
  if (Error e = parse_frame(type, bytes, frame, why); e != Error::none) return failure(e, why);
  // P/Q may come before the welcome: answer a ping, otherwise nothing changes.
  if (frame.kind == FrameKind::ping || frame.kind == FrameKind::pong)
    return Endpoint::control(frame, sink);
  if (frame.kind != FrameKind::welcome)
    return failure(Error::unexpected_frame, "expected a welcome first");
  Welcome welcome;
  if (Error e = parse_welcome(type, bytes, welcome, why); e != Error::none) return failure(e, why);

  Received r;
  r.kind = Received::Kind::welcome;
  if (welcome.resumed) {
    if (!asked_resume_ || welcome.session != session_)
      return failure(Error::unexpected_frame, "welcome resumed a session that was not asked for");
    if (Error e = endpoint_.check_peer_last(welcome.last, why); e != Error::none)
      return failure(e, "welcome: " + why);
    r.outcome = Received::Outcome::resumed;
    state_ = State::established;
    r.replayed = endpoint_.go_online(welcome.last, sink);
    return r;
  }
  r.outcome = had_session_ ? Received::Outcome::resume_failed : Received::Outcome::new_session;
  r.reason = local_reason_.empty() ? welcome.reason : local_reason_;
  session_ = welcome.session;
  endpoint_.restart_keeping_unacked();
  state_ = State::established;
  r.replayed = endpoint_.go_online(0, sink);
  return r;
}

void ClientSession::disconnected(TimePoint now) {
  endpoint_.go_offline();
  endpoint_.hold_window(false);
  endpoint_.expire(now);
  state_ = State::offline;
}

void ClientSession::end() {
  endpoint_.go_offline();
  endpoint_.hold_window(false);
  endpoint_.reset();
  session_ = SessionId();
  state_ = State::offline;
}

void ClientSession::abandon() {
  endpoint_.go_offline();
  endpoint_.hold_window(false);
  endpoint_.restart_keeping_unacked();
  session_ = SessionId();
  state_ = State::offline;
}

}  // namespace tether::resume
