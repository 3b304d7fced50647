// Client side (docs/resume.md §3.2): the hello it builds, every kind of welcome, sends while
// not established, and the local window check. Literal times; the server is played by hand.
#include "resume/client_session.hpp"

#include <gtest/gtest.h>

#include <deque>

#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::ClientSession;
using tether::resume::Config;
using tether::resume::encode_welcome;
using tether::resume::Error;
using tether::resume::Received;
using tether::resume::SessionId;
using tether::resume::Welcome;
using Kind = Received::Kind;
using Outcome = Received::Outcome;
using State = ClientSession::State;

const SessionId sid_a = *SessionId::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
const SessionId sid_b = *SessionId::parse("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

struct Client {
  explicit Client(Config c = {}) : cs(c) {}
  Received receive(std::string_view frame, TimePoint at = t0) {
    held.emplace_back(frame);
    return cs.receive(MessageType::text, bytes_of(held.back()), at, out);
  }
  Received welcome(const Welcome& w, TimePoint at = t0) { return receive(encode_welcome(w), at); }
  void send(std::string_view payload, TimePoint at = t0) {
    cs.send(MessageType::text, bytes_of(payload), at, out);
  }
  // Opens and completes a new session sid_a.
  void establish(TimePoint at = t0) {
    cs.open(at, out);
    welcome(Welcome{sid_a, false, 0, "new session"}, at);
    out.clear();
  }
  ClientSession cs;
  Recorder out;
  std::deque<std::string> held;
};

TEST(ClientHello, FirstConnectionAsksForANewSession) {
  Client c;
  EXPECT_EQ(c.cs.state(), State::offline);
  c.cs.open(t0, c.out);
  EXPECT_EQ(c.cs.state(), State::awaiting_welcome);
  EXPECT_EQ(c.out.frames,
            (std::vector<Sent>{{MessageType::text, R"(H{"v":1,"session":"","last":0})"}}));
}

TEST(ClientWelcome, NewSessionSendsWhatWasQueuedBeforeIt) {
  Client c;
  c.send("early");  // before any connection
  c.cs.open(t0, c.out);
  c.send("during");  // hello sent, no welcome yet
  c.out.clear();
  Received r = c.welcome(Welcome{sid_a, false, 0, "new session"});
  ASSERT_EQ(r.kind, Kind::welcome) << r.message;
  EXPECT_EQ(r.outcome, Outcome::new_session);
  EXPECT_EQ(r.reason, "new session");
  EXPECT_EQ(r.replayed, 2u);
  EXPECT_EQ(c.cs.state(), State::established);
  EXPECT_EQ(c.cs.session(), sid_a);
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{"M1,0;early", "M2,0;during"}));
  c.send("now");
  EXPECT_EQ(c.out.texts().back(), "M3,0;now");
}

TEST(ClientHello, ReconnectNamesTheSessionAndTheHighestReceived) {
  Client c;
  c.establish();
  c.receive("M1,0;a");
  c.receive("M2,0;b");
  c.cs.disconnected(t0 + 1s);
  EXPECT_EQ(c.cs.state(), State::offline);
  c.cs.open(t0 + 2s, c.out);
  EXPECT_EQ(c.out.texts(),
            (std::vector<std::string>{
                R"(H{"v":1,"session":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","last":2})"}));
}

TEST(ClientWelcome, ResumedSendsAgainWhatTheServerDidNotReceive) {
  Client c;
  c.establish();
  c.send("1");
  c.send("2");
  c.send("3");
  c.cs.disconnected(t0);
  c.send("4");
  c.cs.open(t0 + 1s, c.out);
  c.out.clear();
  Received r = c.welcome(Welcome{sid_a, true, 1, ""}, t0 + 1s);
  ASSERT_EQ(r.kind, Kind::welcome) << r.message;
  EXPECT_EQ(r.outcome, Outcome::resumed);
  EXPECT_EQ(r.replayed, 3u);
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{"M2,0;2", "M3,0;3", "M4,0;4"}));
  EXPECT_EQ(c.cs.endpoint().window().first_seq(), 2u);
}

TEST(ClientWelcome, ResumeFailedRenumbersAndResendsEveryUnackedMessage) {
  Client c;
  c.establish();
  c.send("1");
  c.send("2");
  c.send("3");
  c.receive("M1,1;x");  // the server got 1; 2 and 3 are unacknowledged
  c.cs.disconnected(t0);
  c.cs.open(t0 + 1s, c.out);
  c.out.clear();
  Received r = c.welcome(Welcome{sid_b, false, 0, "unknown session"}, t0 + 1s);
  ASSERT_EQ(r.kind, Kind::welcome) << r.message;
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "unknown session");
  EXPECT_EQ(c.cs.session(), sid_b);
  // At-least-once: the server may have received 2 and 3 in the old session.
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{"M1,0;2", "M2,0;3"}));
  EXPECT_EQ(c.cs.endpoint().highest_received(), 0u);
  EXPECT_EQ(c.receive("M1,0;fresh").kind, Kind::deliver);
}

TEST(ClientHello, OwnWindowLossStartsANewSessionAndSaysWhy) {
  Config cfg;
  cfg.max_messages = 2;
  Client c(cfg);
  c.establish();
  c.cs.disconnected(t0);
  for (int i = 1; i <= 4; ++i) c.send(std::to_string(i));  // 1 and 2 forced out, never acked
  c.cs.open(t0 + 1s, c.out);
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{R"(H{"v":1,"session":"","last":0})"}));
  c.out.clear();
  Received r = c.welcome(Welcome{sid_b, false, 0, "new session"}, t0 + 1s);
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "replay window exceeded (client)");
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{"M1,0;3", "M2,0;4"}));
}

TEST(ClientHello, MessagesSentBetweenHelloAndWelcomeAreNeverForcedOut) {
  Config cfg;
  cfg.max_messages = 2;
  Client c(cfg);
  c.establish();
  c.send("1");
  c.cs.disconnected(t0);
  c.cs.open(t0 + 1s, c.out);
  for (int i = 2; i <= 5; ++i) c.send(std::to_string(i), t0 + 1s);
  EXPECT_EQ(c.cs.endpoint().window().size(), 5u);
  EXPECT_EQ(c.cs.next_deadline(), TimePoint::max());
  c.out.clear();
  Received r = c.welcome(Welcome{sid_a, true, 0, ""}, t0 + 1s);
  ASSERT_EQ(r.kind, Kind::welcome) << r.message;
  EXPECT_EQ(c.out.texts(),
            (std::vector<std::string>{"M1,0;1", "M2,0;2", "M3,0;3", "M4,0;4", "M5,0;5"}));
  EXPECT_EQ(c.cs.endpoint().window().size(), 2u);  // bounds apply again once sent
}

TEST(ClientWelcome, AnythingButAWelcomeFirstIsUnexpected) {
  Client c;
  c.cs.open(t0, c.out);
  Received r = c.receive("M1,0;x");
  EXPECT_EQ(r.kind, Kind::error);
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "expected a welcome first");
  r = c.receive(R"(W{"v":1})");
  EXPECT_EQ(r.error, Error::malformed_frame);
  EXPECT_EQ(r.message, "welcome: missing \"session\"");
}

TEST(ClientWelcome, ResumingASessionNotAskedForIsAnError) {
  Client c;
  c.cs.open(t0, c.out);
  Received r = c.welcome(Welcome{sid_a, true, 0, ""});
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "welcome resumed a session that was not asked for");
  Client d;
  d.establish();
  d.cs.disconnected(t0);
  d.cs.open(t0, d.out);
  r = d.welcome(Welcome{sid_b, true, 0, ""});
  EXPECT_EQ(r.error, Error::unexpected_frame);
}

TEST(ClientWelcome, LastAboveWhatWasSentIsInvalid) {
  Client c;
  c.establish();
  c.send("1");
  c.cs.disconnected(t0);
  c.cs.open(t0, c.out);
  Received r = c.welcome(Welcome{sid_a, true, 2, ""});
  EXPECT_EQ(r.error, Error::invalid_ack);
  EXPECT_EQ(r.message, "welcome: last 2 is above the highest sequence number sent (1)");
}

TEST(ClientWelcome, SecondWelcomeIsUnexpected) {
  Client c;
  c.establish();
  Received r = c.welcome(Welcome{sid_a, true, 0, ""});
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "welcome after the opening exchange");
}

TEST(ClientSessionEnd, EndForgetsEverythingAndAbandonKeepsUnacked) {
  Client c;
  c.establish();
  c.send("1");
  c.cs.abandon();
  EXPECT_TRUE(c.cs.session().empty());
  c.cs.open(t0, c.out);
  c.out.clear();
  Received r = c.welcome(Welcome{sid_b, false, 0, "new session"});
  EXPECT_EQ(r.outcome, Outcome::new_session);
  EXPECT_EQ(c.out.texts(), (std::vector<std::string>{"M1,0;1"}));
  c.send("2");
  c.cs.end();
  EXPECT_TRUE(c.cs.session().empty());
  EXPECT_TRUE(c.cs.endpoint().window().empty());
  EXPECT_EQ(c.cs.endpoint().next_seq(), 1u);
}

TEST(ClientHello, OpenWithoutADisconnectFirstActsAsOne) {
  Client c;
  c.establish();
  c.receive("M1,0;a");
  c.cs.open(t0 + 1s, c.out);  // the glue missed the disconnect
  EXPECT_EQ(c.cs.state(), State::awaiting_welcome);
  EXPECT_EQ(c.out.texts(),
            (std::vector<std::string>{
                R"(H{"v":1,"session":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","last":1})"}));
  EXPECT_EQ(c.cs.endpoint().next_deadline(), TimePoint::max());  // no ack due on a dead link
}

TEST(ClientSessionEnd, MessageWithoutAConnectionIsUnexpected) {
  Client c;
  EXPECT_EQ(c.receive("M1,0;x").error, Error::unexpected_frame);
}

}  // namespace
