// Server side (docs/resume.md §3.1): the answer to every kind of hello, takeover, detach and
// expiry, and the session table bound. Injected RNG, literal times.
#include "resume/session_store.hpp"

#include <gtest/gtest.h>

#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::protocol::CountingRandom;
using tether::resume::close_code;
using tether::resume::Config;
using tether::resume::encode_hello;
using tether::resume::Error;
using tether::resume::Hello;
using tether::resume::HelloResult;
using tether::resume::Received;
using tether::resume::Session;
using tether::resume::SessionId;
using tether::resume::SessionStore;
using Outcome = Received::Outcome;

constexpr std::string_view first_id = "000102030405060708090a0b0c0d0e0f";
constexpr std::string_view second_id = "101112131415161718191a1b1c1d1e1f";

struct Server {
  explicit Server(Config c = {}) : store(c, rng) {}
  HelloResult hello(std::string_view frame, uint64_t owner, TimePoint at = t0) {
    out.clear();
    return store.accept_hello(MessageType::text, bytes_of(frame), owner, at, out);
  }
  HelloResult hello(const Hello& h, uint64_t owner, TimePoint at = t0) {
    return hello(encode_hello(h), owner, at);
  }
  void send(Session& s, std::string_view payload, TimePoint at = t0) {
    s.endpoint.send(MessageType::text, bytes_of(payload), at, out);
  }
  CountingRandom rng{0};
  SessionStore store;
  Recorder out;
};

SessionId sid(std::string_view hex) { return *SessionId::parse(hex); }

TEST(ServerHello, WithoutASessionStartsANewOneWithAFreshId) {
  Server s;
  HelloResult r = s.hello(Hello{}, 1);
  ASSERT_EQ(r.error, Error::none);
  ASSERT_NE(r.session, nullptr);
  EXPECT_EQ(r.outcome, Outcome::new_session);
  EXPECT_EQ(r.reason, "new session");
  EXPECT_EQ(r.session->id.view(), first_id);
  EXPECT_EQ(r.session->owner, 1u);
  EXPECT_TRUE(r.session->endpoint.online());
  EXPECT_EQ(s.out.frames,
            (std::vector<Sent>{{MessageType::text,
                                R"(W{"v":1,"session":"000102030405060708090a0b0c0d0e0f",)"
                                R"("resumed":false,"last":0,"reason":"new session"})"}}));
  EXPECT_EQ(s.store.size(), 1u);
}

TEST(ServerHello, UnknownSessionGetsAFreshSessionAndSaysWhy) {
  Server s;
  HelloResult r = s.hello(Hello{sid("ffffffffffffffffffffffffffffffff"), 12}, 1);
  ASSERT_EQ(r.error, Error::none);
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "unknown session");
  EXPECT_EQ(s.out.texts().at(0),
            R"(W{"v":1,"session":"000102030405060708090a0b0c0d0e0f","resumed":false,"last":0,)"
            R"("reason":"unknown session"})");
  EXPECT_EQ(r.session->endpoint.next_seq(), 1u);
}

TEST(ServerHello, ResumesADetachedSessionAndReplaysWhatTheClientMissed) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  s.send(*session, "a");
  s.send(*session, "b");
  s.send(*session, "c");
  Recorder ignored;
  session->endpoint.receive(MessageType::text, bytes_of("M1,1;x"), t0, ignored);
  session->endpoint.receive(MessageType::text, bytes_of("M2,1;y"), t0, ignored);
  s.store.detach(*session, 1, t0 + 1s);
  EXPECT_EQ(s.store.detached(), 1u);
  EXPECT_FALSE(session->endpoint.online());
  s.out.clear();
  s.send(*session, "d", t0 + 2s);  // while detached: stored only
  EXPECT_TRUE(s.out.frames.empty());

  HelloResult r = s.hello(Hello{sid(first_id), 2}, 7, t0 + 3s);
  ASSERT_EQ(r.error, Error::none) << r.message;
  EXPECT_EQ(r.session, session);
  EXPECT_EQ(r.outcome, Outcome::resumed);
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.previous_owner, 0u);
  EXPECT_EQ(r.replayed, 2u);
  EXPECT_EQ(session->owner, 7u);
  EXPECT_EQ(s.store.detached(), 0u);
  EXPECT_EQ(
      s.out.texts(),
      (std::vector<std::string>{
          R"(W{"v":1,"session":"000102030405060708090a0b0c0d0e0f","resumed":true,"last":2,"reason":""})",
          "M3,2;c", "M4,2;d"}));
}

TEST(ServerHello, TakesASessionOverFromAConnectionThatIsStillAttached) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  HelloResult r = s.hello(Hello{sid(first_id), 0}, 2);
  ASSERT_EQ(r.error, Error::none);
  EXPECT_EQ(r.outcome, Outcome::resumed);
  EXPECT_EQ(r.previous_owner, 1u);  // the glue closes connection 1
  EXPECT_EQ(session->owner, 2u);
  s.store.detach(*session, 1, t0);  // the old connection's late close changes nothing
  EXPECT_EQ(session->owner, 2u);
  EXPECT_EQ(s.store.detached(), 0u);
  EXPECT_TRUE(session->endpoint.online());
}

TEST(ServerHello, ReplayWindowExceededWhenAMessageAfterLastWasForcedOut) {
  Config c;
  c.max_messages = 3;
  Server s(c);
  Session* session = s.hello(Hello{}, 1).session;
  s.store.detach(*session, 1, t0);
  for (int i = 0; i < 5; ++i) s.send(*session, "m");  // 1 and 2 forced out unacked
  HelloResult r = s.hello(Hello{sid(first_id), 1}, 2);
  ASSERT_EQ(r.error, Error::none);
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "replay window exceeded");
  EXPECT_EQ(r.session->id.view(), second_id);
  EXPECT_EQ(s.store.find(sid(first_id)), nullptr);  // the old session is gone
  EXPECT_EQ(s.store.size(), 1u);
  EXPECT_EQ(s.out.texts().at(0),
            R"(W{"v":1,"session":"101112131415161718191a1b1c1d1e1f","resumed":false,"last":0,)"
            R"("reason":"replay window exceeded"})");
  EXPECT_EQ(s.out.frames.size(), 1u);  // nothing replayed into the fresh session
}

TEST(ServerHello, WindowExceededOnAnAttachedSessionStillNamesItsConnection) {
  Config c;
  c.max_messages = 3;
  Server s(c);
  Session* session = s.hello(Hello{}, 1).session;
  for (int i = 0; i < 5; ++i) s.send(*session, "m");  // sent on connection 1, 1 and 2 forced out
  HelloResult r = s.hello(Hello{sid(first_id), 0}, 2);
  EXPECT_EQ(r.reason, "replay window exceeded");
  EXPECT_EQ(r.previous_owner, 1u);  // close it, and forget its (now dangling) Session*
  EXPECT_EQ(s.store.size(), 1u);
}

TEST(ServerHello, LastJustBelowTheOldestRetainedMessageStillResumes) {
  Config c;
  c.max_messages = 3;
  Server s(c);
  Session* session = s.hello(Hello{}, 1).session;
  s.store.detach(*session, 1, t0);
  for (int i = 0; i < 5; ++i) s.send(*session, std::to_string(i + 1));  // keeps 3..5
  HelloResult r = s.hello(Hello{sid(first_id), 2}, 2);
  EXPECT_EQ(r.outcome, Outcome::resumed);
  EXPECT_EQ(r.replayed, 3u);
}

TEST(ServerHello, ReplayWindowExceededByAge) {
  Config c;
  c.window = 10s;
  Server s(c);
  Session* session = s.hello(Hello{}, 1).session;
  s.send(*session, "old", t0);
  s.store.detach(*session, 1, t0 + 5s);
  HelloResult r = s.hello(Hello{sid(first_id), 0}, 2, t0 + 10s);
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "replay window exceeded");
}

TEST(Expiry, DetachedSessionIsForgottenAfterTheWindow) {
  Config c;
  c.window = 2min;
  Server s(c);
  Session* session = s.hello(Hello{}, 1).session;
  s.store.detach(*session, 1, t0);
  EXPECT_EQ(s.store.next_deadline(), t0 + 2min);
  s.store.expire(t0 + 2min - 1ns);
  EXPECT_EQ(s.store.size(), 1u);
  s.store.expire(t0 + 2min);
  EXPECT_EQ(s.store.size(), 0u);
  EXPECT_EQ(s.store.next_deadline(), TimePoint::max());
  EXPECT_EQ(s.hello(Hello{sid(first_id), 0}, 2, t0 + 2min).reason, "unknown session");
}

TEST(Expiry, AHelloAfterTheWindowFindsNoSessionEvenBeforeTheSweep) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  s.store.detach(*session, 1, t0);
  HelloResult r = s.hello(Hello{sid(first_id), 0}, 2, t0 + 2min);
  EXPECT_EQ(r.reason, "unknown session");
  EXPECT_EQ(s.store.size(), 1u);  // only the fresh one
}

TEST(Expiry, ResumingCancelsTheExpiry) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  s.store.detach(*session, 1, t0);
  s.hello(Hello{sid(first_id), 0}, 2, t0 + 1min);
  s.store.expire(t0 + 10min);
  EXPECT_EQ(s.store.find(sid(first_id)), session);
}

TEST(End, ForgetsTheSessionAtOnce) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  s.store.end(*session);
  EXPECT_EQ(s.store.size(), 0u);
  EXPECT_EQ(s.hello(Hello{sid(first_id), 0}, 2).reason, "unknown session");
}

TEST(ServerHello, FirstMessageThatIsNotAHelloIsUnexpected) {
  Server s;
  HelloResult r = s.hello("M1,0;x", 1);
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "expected a hello first, got a data frame");
  EXPECT_EQ(r.session, nullptr);
  r = s.hello("W{}", 1);
  EXPECT_EQ(r.message, "expected a hello first, got a welcome");
  EXPECT_TRUE(s.out.frames.empty());
  EXPECT_EQ(s.store.size(), 0u);
}

TEST(ServerHello, MalformedHelloIsAProtocolError) {
  Server s;
  HelloResult r = s.hello(R"(H{"v":1,"session":""})", 1);
  EXPECT_EQ(r.error, Error::malformed_frame);
  EXPECT_EQ(r.message, "hello: missing \"last\"");
  EXPECT_EQ(close_code(r.error), 1002);
  r = s.hello(R"(H{"v":2})", 1);
  EXPECT_EQ(r.error, Error::unsupported_version);
}

TEST(ServerHello, LastOutsideWhatTheSessionSentIsInvalidAndLeavesItAlone) {
  Server s;
  Session* session = s.hello(Hello{}, 1).session;
  s.send(*session, "a");
  s.send(*session, "b");
  Recorder ignored;
  session->endpoint.receive(MessageType::text, bytes_of("A1"), t0, ignored);
  HelloResult r = s.hello(Hello{sid(first_id), 3}, 2);
  EXPECT_EQ(r.error, Error::invalid_ack);
  EXPECT_EQ(r.message, "hello: last 3 is above the highest sequence number sent (2)");
  r = s.hello(Hello{sid(first_id), 0}, 2);
  EXPECT_EQ(r.error, Error::invalid_ack);
  EXPECT_EQ(r.message, "hello: last 0 is below the ack already received (1)");
  EXPECT_EQ(session->owner, 1u);
  EXPECT_TRUE(s.out.frames.empty());
}

TEST(Table, FullTableDropsTheDetachedSessionClosestToExpiry) {
  Config c;
  c.max_sessions = 2;
  Server s(c);
  Session* a = s.hello(Hello{}, 1).session;
  Session* b = s.hello(Hello{}, 2).session;
  const SessionId a_id = a->id, b_id = b->id;
  s.store.detach(*b, 2, t0);
  s.store.detach(*a, 1, t0 + 1s);
  HelloResult r = s.hello(Hello{}, 3);
  ASSERT_EQ(r.error, Error::none);
  EXPECT_EQ(s.store.size(), 2u);
  EXPECT_EQ(s.store.find(b_id), nullptr);
  EXPECT_NE(s.store.find(a_id), nullptr);
}

TEST(Table, FullTableWithEverySessionAttachedRefusesWith1013) {
  Config c;
  c.max_sessions = 1;
  Server s(c);
  s.hello(Hello{}, 1);
  HelloResult r = s.hello(Hello{}, 2);
  EXPECT_EQ(r.error, Error::too_many_sessions);
  EXPECT_EQ(r.message, "session table full (1 sessions)");
  EXPECT_EQ(close_code(r.error), 1013);
  EXPECT_TRUE(s.out.frames.empty());
}

}  // namespace

namespace {

// Several nodes (Redis, docs/deploy.md): a session made on one store is carried on by another
// from what the shared store kept: the numbers continue, the client gets what it missed.
TEST(ServerHello, AdoptedSessionContinuesTheNumberingAndReplaysTheRest) {
  Server a, b;
  Session* on_a = a.hello(Hello{}, 1).session;
  for (auto m : {"a", "b", "c", "d"}) a.send(*on_a, m);
  Recorder ignored;
  on_a->endpoint.receive(MessageType::text, bytes_of("M1,2;x"), t0, ignored);  // acks 2
  // Node A dies. The shared store has out=4, in=1 and messages 3..4 (acked ones trimmed); the
  // client last saw 3.
  Session* on_b = b.store.adopt(sid(first_id), 9);
  ASSERT_NE(on_b, nullptr);
  EXPECT_EQ(b.store.adopt(sid(first_id), 9), nullptr);  // already here
  on_b->endpoint.restore(3, 4, 1);
  on_b->endpoint.stash(4, MessageType::text, bytes_of("d"), t0);
  b.out.clear();
  HelloResult r = b.store.resume_adopted(*on_b, 3, b.out);
  EXPECT_EQ(r.outcome, Outcome::resumed);
  EXPECT_EQ(r.replayed, 1u);
  b.send(*on_b, "e");
  EXPECT_EQ(
      b.out.texts(),
      (std::vector<std::string>{
          R"(W{"v":1,"session":"000102030405060708090a0b0c0d0e0f","resumed":true,"last":1,"reason":""})",
          "M4,1;d", "M5,1;e"}));
  // The client's next message is 2: 1 was delivered on A and is a duplicate here.
  auto dup = on_b->endpoint.receive(MessageType::text, bytes_of("M1,5;x"), t0, ignored);
  EXPECT_EQ(dup.kind, Received::Kind::duplicate);
  auto next = on_b->endpoint.receive(MessageType::text, bytes_of("M2,5;y"), t0, ignored);
  EXPECT_EQ(next.kind, Received::Kind::deliver);
}

TEST(ServerHello, FailedSharedResumeStartsAFreshSessionAndSaysWhy) {
  Server b;
  HelloResult r = b.store.fresh_after_failed_resume(4, "unknown session", b.out);
  ASSERT_NE(r.session, nullptr);
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.session->owner, 4u);
  EXPECT_EQ(
      b.out.texts(),
      (std::vector<std::string>{
          R"(W{"v":1,"session":"000102030405060708090a0b0c0d0e0f","resumed":false,"last":0,"reason":"unknown session"})"}));
}

}  // namespace
