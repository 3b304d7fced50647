#include "resume/session_store.hpp"

namespace tether::resume {

namespace {
const char* kind_name(FrameKind kind) {
  switch (kind) {
    case FrameKind::data:
      return "data frame";
    case FrameKind::ack:
      return "ack frame";
    case FrameKind::hello:
      return "hello";
    case FrameKind::welcome:
      return "welcome";
    case FrameKind::ping:
      return "ping frame";
    case FrameKind::pong:
      return "pong frame";
  }
  return "frame";
}

void send_welcome(const Welcome& welcome, FrameSink sink) {
  const std::string text = encode_welcome(welcome);
  sink(MessageType::text, as_bytes(text));
}
}  // namespace

SessionStore::SessionStore(const Config& config, protocol::Random& rng)
    : config_(config), rng_(rng) {}

HelloResult SessionStore::accept_hello(MessageType type, std::span<const uint8_t> bytes,
                                       uint64_t owner, TimePoint now, FrameSink sink) {
  HelloResult r;
  auto fail = [&r](Error e, std::string message) {
    r.error = e;
    r.message = std::move(message);
    return std::move(r);
  };
  Frame frame;
  std::string why;
  if (Error e = parse_frame(type, bytes, frame, why); e != Error::none) return fail(e, why);
  if (frame.kind == FrameKind::ping || frame.kind == FrameKind::pong) {
    // Before the hello: answer a ping; the hello is still to come.
    r.control = Endpoint::control(frame, sink).kind;
    return r;
  }
  if (frame.kind != FrameKind::hello)
    return fail(Error::unexpected_frame,
                std::string("expected a hello first, got a ") + kind_name(frame.kind));
  Hello hello;
  if (Error e = parse_hello(type, bytes, hello, why); e != Error::none) return fail(e, why);

  expire(now);  // a session past its time is unknown, whether or not the sweep ran yet
  if (hello.session.empty()) {
    r.outcome = Received::Outcome::new_session;
    r.reason = "new session";
  } else if (Session* s = find(hello.session); !s) {
    r.outcome = Received::Outcome::resume_failed;
    r.reason = "unknown session";
  } else {
    if (Error e = s->endpoint.check_peer_last(hello.last, why); e != Error::none)
      return fail(e, "hello: " + why);
    if (s->owner != owner) r.previous_owner = s->owner;
    s->endpoint.expire(now);
    if (!s->endpoint.can_replay_after(hello.last)) {
      erase(*s);
      r.outcome = Received::Outcome::resume_failed;
      r.reason = "replay window exceeded";
    } else {
      // Take the session over, from its previous connection if it still had one.
      s->endpoint.go_offline();
      if (s->expires != TimePoint::max()) expiries_.erase({s->expires, s});
      s->expires = TimePoint::max();
      s->owner = owner;
      send_welcome(Welcome{s->id, true, s->endpoint.highest_received(), {}}, sink);
      r.session = s;
      r.outcome = Received::Outcome::resumed;
      r.reason = "";
      r.replayed = s->endpoint.go_online(hello.last, sink);
      return r;
    }
  }
  Session* s = create(r);
  if (!s) return r;
  s->owner = owner;
  send_welcome(Welcome{s->id, false, 0, std::string(r.reason)}, sink);
  s->endpoint.go_online(0, sink);
  r.session = s;
  return r;
}

Session* SessionStore::adopt(const SessionId& id, uint64_t owner) {
  if (sessions_.contains(id)) return nullptr;
  if (sessions_.size() >= config_.max_sessions) {
    if (expiries_.empty()) return nullptr;
    erase(*expiries_.begin()->second);
  }
  auto session = std::make_unique<Session>(id, config_);
  Session* s = session.get();
  s->owner = owner;
  sessions_.emplace(id, std::move(session));
  return s;
}

HelloResult SessionStore::resume_adopted(Session& s, uint64_t peer_last, FrameSink sink) {
  HelloResult r;
  send_welcome(Welcome{s.id, true, s.endpoint.highest_received(), {}}, sink);
  r.session = &s;
  r.outcome = Received::Outcome::resumed;
  r.replayed = s.endpoint.go_online(peer_last, sink);
  return r;
}

HelloResult SessionStore::fresh_after_failed_resume(uint64_t owner, std::string_view reason,
                                                    FrameSink sink) {
  HelloResult r;
  r.outcome = Received::Outcome::resume_failed;
  r.reason = reason;
  Session* s = create(r);
  if (!s) return r;
  s->owner = owner;
  send_welcome(Welcome{s->id, false, 0, std::string(reason)}, sink);
  s->endpoint.go_online(0, sink);
  r.session = s;
  return r;
}

Session* SessionStore::create(HelloResult& r) {
  if (sessions_.size() >= config_.max_sessions) {
    if (expiries_.empty()) {
      r.error = Error::too_many_sessions;
      r.message = "session table full (" + std::to_string(sessions_.size()) + " sessions)";
      return nullptr;
    }
    erase(*expiries_.begin()->second);  // the detached session closest to expiry anyway
  }
  SessionId id = SessionId::generate(rng_);
  while (sessions_.contains(id)) id = SessionId::generate(rng_);
  auto session = std::make_unique<Session>(id, config_);
  Session* s = session.get();
  sessions_.emplace(id, std::move(session));
  return s;
}

void SessionStore::detach(Session& session, uint64_t owner, TimePoint now) {
  if (session.owner != owner || owner == 0) return;
  session.owner = 0;
  session.endpoint.go_offline();
  session.expires = now + config_.window;
  expiries_.emplace(session.expires, &session);
}

void SessionStore::end(Session& session) { erase(session); }

void SessionStore::expire(TimePoint now) {
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    Session* s = expiries_.begin()->second;
    expiries_.erase(expiries_.begin());
    sessions_.erase(s->id);
  }
}

TimePoint SessionStore::next_deadline() const {
  return expiries_.empty() ? TimePoint::max() : expiries_.begin()->first;
}

Session* SessionStore::find(const SessionId& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void SessionStore::erase(Session& session) {
  if (session.expires != TimePoint::max()) expiries_.erase({session.expires, &session});
  const SessionId id = session.id;  // the map owns `session`
  sessions_.erase(id);
}

}  // namespace tether::resume
