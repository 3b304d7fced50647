// Server side of tether.resume.v1 (docs/resume.md §3.1): the table of sessions, the answer to
// each hello, and what happens to a session whose connection is gone. Sans-I/O: the welcome and
// any replay go to the FrameSink passed in; `owner` is whatever non-zero number the glue uses
// to name a connection.
//
// Usage (server glue):
//   on the first message of a resume connection:
//     auto h = store.accept_hello(type, bytes, conn_id, now, sink);
//     if (h.error != Error::none) fail(close_code(h.error), h.message);
//     if (h.previous_owner) close that connection (its session was taken over);
//     conn.session = h.session;                     // then ...
//   every later message:  h.session->endpoint.receive(type, bytes, now, sink)
//   application sends:     session->endpoint.send(type, bytes, now, sink)
//   connection gone:       store.detach(*session, conn_id, now)   (kept for config.window)
//   clean end (1000 / 1002): store.end(*session)
//   a coarse timer:        store.expire(now) at store.next_deadline()
// A Session* is safe to use while a connection owns it. Once detached, any later
// accept_hello/expire/end may forget it: look it up again by id (find) instead of keeping it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "protocol/random.hpp"
#include "resume/config.hpp"
#include "resume/endpoint.hpp"
#include "resume/session_id.hpp"

namespace tether::resume {

struct Session {
  Session(const SessionId& session_id, const Config& config) : id(session_id), endpoint(config) {}
  SessionId id;
  Endpoint endpoint;
  uint64_t owner = 0;                    // the connection carrying it; 0 while detached
  TimePoint expires = TimePoint::max();  // detached: forgotten at this time
  // For a server glue that also keeps sessions in a shared store (Redis, several nodes); the
  // store here does not use them.
  uint64_t tag = 0;         // the glue's name for this incarnation (ids can come back)
  uint32_t persisting = 0;  // sends waiting for the shared store before they go out
  bool unshared = false;    // a send went out unstored: the session cannot move to another node
  std::vector<std::pair<std::string, std::string>> stream_pos;  // topic -> last stream id sent
};

struct HelloResult {
  Error error = Error::none;  // not none: fail the connection with close_code(error), `message`
  std::string message;
  Session* session = nullptr;  // attached to the connection; valid until end/expire/replace
  Received::Outcome outcome = Received::Outcome::new_session;
  std::string_view reason;  // the welcome's reason ("" when resumed)
  // Another connection carried the session asked for: close it, and drop its Session* first
  // (on resume_failed that session has been forgotten).
  uint64_t previous_owner = 0;
  uint64_t replayed = 0;  // our messages sent again after the welcome
  // Received::Kind::ping or ::pong: the message was a P/Q before the hello (a ping has been
  // answered through the sink). No session, no error: keep waiting for the hello.
  // Received::Kind::welcome (the default) otherwise.
  Received::Kind control = Received::Kind::welcome;
};

class SessionStore {
 public:
  SessionStore(const Config& config, protocol::Random& rng);

  // The first message of a resume connection (or a P/Q before it: see HelloResult::control). Sends
  // the welcome, then (when resumed) the messages the client has not received, through `sink`.
  // Errors: anything but a valid hello (malformed_frame, unsupported_version, unexpected_frame), a
  // "last" the session cannot have (invalid_ack; the session is left as it was), or a full table
  // (too_many_sessions, 1013).
  HelloResult accept_hello(MessageType type, std::span<const uint8_t> bytes, uint64_t owner,
                           TimePoint now, FrameSink sink);

  // Connection `owner` is gone without ending the session: keep it for config.window. Ignored
  // when another connection has taken the session over since.
  void detach(Session& session, uint64_t owner, TimePoint now);
  // The session is over for good: forget it now. `session` is invalid afterwards.
  void end(Session& session);
  // Forgets detached sessions whose time is up.
  void expire(TimePoint now);
  // When expire() next has something to do; TimePoint::max() when nothing is detached.
  TimePoint next_deadline() const;

  Session* find(const SessionId& id);
  // A session this store has not seen, carried on from elsewhere (another node, through Redis):
  // made with this id and owned by `owner`; the caller restores its endpoint, then answers the
  // hello with resume_adopted(). nullptr when the table is full or the id is already here.
  Session* adopt(const SessionId& id, uint64_t owner);
  // The answer to a hello for an adopted session: the welcome (resumed) and the replay.
  HelloResult resume_adopted(Session& session, uint64_t peer_last, FrameSink sink);
  // The hello could not be honoured after all (the shared store said so): a fresh session,
  // welcomed with resume_failed and `reason`.
  HelloResult fresh_after_failed_resume(uint64_t owner, std::string_view reason, FrameSink sink);
  std::size_t size() const { return sessions_.size(); }
  std::size_t detached() const { return expiries_.size(); }
  const Config& config() const { return config_; }

 private:
  Session* create(HelloResult& result);
  void erase(Session& session);

  Config config_;
  protocol::Random& rng_;
  std::unordered_map<SessionId, std::unique_ptr<Session>> sessions_;
  std::set<std::pair<TimePoint, Session*>> expiries_;  // detached sessions, soonest first
};

}  // namespace tether::resume
