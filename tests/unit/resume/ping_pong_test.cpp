// Application-level ping/pong (docs/resume.md §2.8): P<token> / Q<token> parse and encode,
// malformed tokens, a ping answered by its pong through the sink, P/Q before the hello and
// before the welcome, and P/Q leaving the numbering alone.
#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "protocol/random.hpp"
#include "resume/client_session.hpp"
#include "resume/endpoint.hpp"
#include "resume/frame.hpp"
#include "resume/session_store.hpp"
#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::ClientSession;
using tether::resume::Config;
using tether::resume::encode_hello;
using tether::resume::encode_ping;
using tether::resume::encode_pong;
using tether::resume::encode_welcome;
using tether::resume::Endpoint;
using tether::resume::Error;
using tether::resume::Frame;
using tether::resume::FrameKind;
using tether::resume::Hello;
using tether::resume::HelloResult;
using tether::resume::parse_frame;
using tether::resume::Received;
using tether::resume::SessionId;
using tether::resume::SessionStore;
using tether::resume::Welcome;
using Kind = Received::Kind;

Error parse(std::string_view s, Frame& f, MessageType type = MessageType::text) {
  std::string why;
  return parse_frame(type, bytes_of(s), f, why);
}

TEST(PingFrame, RoundTrip) {
  for (std::string token : {std::string("1"), std::string("abc-42"), std::string(64, '~'),
                            std::string("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}")}) {
    for (bool ping : {true, false}) {
      const std::string s = ping ? encode_ping(token) : encode_pong(token);
      EXPECT_EQ(s, (ping ? "P" : "Q") + token);
      Frame f;
      ASSERT_EQ(parse(s, f), Error::none) << s;
      EXPECT_EQ(f.kind, ping ? FrameKind::ping : FrameKind::pong);
      EXPECT_EQ(text_of(f.payload), token);
    }
  }
}

TEST(PingFrame, MalformedTokens) {
  const std::string cases[] = {"P",
                               "Q",
                               "P a",
                               "Pa b",
                               std::string("P") + std::string(65, 'x'),
                               "P\t1",
                               std::string("Q\x7f"),
                               "P\xc3\xa9",
                               std::string("P1\0", 3)};
  for (const auto& c : cases) {
    Frame f;
    std::string why;
    EXPECT_EQ(parse_frame(MessageType::text, bytes_of(c), f, why), Error::malformed_frame) << c;
    EXPECT_FALSE(why.empty());
  }
  Frame f;
  EXPECT_EQ(parse("P1", f, MessageType::binary), Error::malformed_frame);
  EXPECT_EQ(parse("Q1", f, MessageType::binary), Error::malformed_frame);
}

TEST(PingEndpoint, PingIsAnsweredByPongThroughTheSink) {
  Endpoint ep(Config{});
  Recorder out;
  ep.go_online(0, out);
  const std::string p = "P17";
  Received r = ep.receive(MessageType::text, bytes_of(p), t0, out);
  EXPECT_EQ(r.kind, Kind::ping);
  EXPECT_EQ(text_of(r.payload), "17");
  EXPECT_EQ(out.frames, (std::vector<Sent>{{MessageType::text, "Q17"}}));
  out.clear();
  const std::string q = "Qxyz";
  r = ep.receive(MessageType::text, bytes_of(q), t0, out);
  EXPECT_EQ(r.kind, Kind::pong);
  EXPECT_EQ(text_of(r.payload), "xyz");
  EXPECT_TRUE(out.frames.empty());
}

TEST(PingEndpoint, PingAndPongDoNotDisturbNumbering) {
  Endpoint ep(Config{});
  Recorder out;
  ep.go_online(0, out);
  std::deque<std::string> held;
  auto recv = [&](std::string s) {
    held.push_back(std::move(s));
    return ep.receive(MessageType::text, bytes_of(held.back()), t0, out);
  };
  ep.send(MessageType::text, bytes_of("a"), t0, out);
  ASSERT_EQ(recv("M1,0;x").kind, Kind::deliver);
  ASSERT_EQ(recv("P1").kind, Kind::ping);
  ASSERT_EQ(recv("Q1").kind, Kind::pong);
  ASSERT_EQ(recv("M2,1;y").kind, Kind::deliver);
  ep.send(MessageType::text, bytes_of("b"), t0, out);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"M1,0;a", "Q1", "M2,2;b"}));
  EXPECT_EQ(ep.highest_received(), 2u);
  EXPECT_EQ(ep.highest_sent(), 2u);
  EXPECT_EQ(ep.peer_acked(), 1u);
  EXPECT_EQ(ep.window().size(), 1u);
  EXPECT_EQ(ep.stats().delivered, 2u);
  EXPECT_EQ(ep.stats().duplicates, 0u);
  // Not acknowledged: no standalone ack is scheduled by a ping alone.
  Endpoint quiet(Config{});
  Recorder qout;
  quiet.go_online(0, qout);
  const std::string p = "P9";
  quiet.receive(MessageType::text, bytes_of(p), t0, qout);
  EXPECT_FALSE(quiet.ack_pending());
}

TEST(PingServer, PingAndPongBeforeTheHello) {
  tether::protocol::CountingRandom rng{0};
  SessionStore store(Config{}, rng);
  Recorder out;
  const std::string p = "Pabc";
  HelloResult h = store.accept_hello(MessageType::text, bytes_of(p), 1, t0, out);
  EXPECT_EQ(h.error, Error::none);
  EXPECT_EQ(h.session, nullptr);
  EXPECT_EQ(h.control, Kind::ping);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"Qabc"}));
  out.clear();
  const std::string q = "Q1";
  h = store.accept_hello(MessageType::text, bytes_of(q), 1, t0, out);
  EXPECT_EQ(h.error, Error::none);
  EXPECT_EQ(h.session, nullptr);
  EXPECT_EQ(h.control, Kind::pong);
  EXPECT_TRUE(out.frames.empty());
  EXPECT_EQ(store.size(), 0u);
  // The hello still works afterwards, and numbering starts at 1.
  h = store.accept_hello(MessageType::text, bytes_of(encode_hello(Hello{})), 1, t0, out);
  ASSERT_EQ(h.error, Error::none);
  ASSERT_NE(h.session, nullptr);
  EXPECT_EQ(h.control, Kind::welcome);
  h.session->endpoint.send(MessageType::text, bytes_of("x"), t0, out);
  EXPECT_EQ(out.texts().back(), "M1,0;x");
  // A malformed P before the hello is a protocol error.
  const std::string bad = "P";
  h = store.accept_hello(MessageType::text, bytes_of(bad), 2, t0, out);
  EXPECT_EQ(h.error, Error::malformed_frame);
}

TEST(PingClient, PingAndPongBeforeTheWelcome) {
  ClientSession cs(Config{});
  Recorder out;
  cs.open(t0, out);
  ASSERT_EQ(out.frames.size(), 1u);  // the hello
  out.clear();
  const std::string p = "P5";
  Received r = cs.receive(MessageType::text, bytes_of(p), t0, out);
  EXPECT_EQ(r.kind, Kind::ping);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"Q5"}));
  EXPECT_EQ(cs.state(), ClientSession::State::awaiting_welcome);
  const std::string q = "Q5";
  EXPECT_EQ(cs.receive(MessageType::text, bytes_of(q), t0, out).kind, Kind::pong);
  EXPECT_EQ(cs.state(), ClientSession::State::awaiting_welcome);
  const std::string w = encode_welcome(
      Welcome{*SessionId::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), false, 0, "new session"});
  EXPECT_EQ(cs.receive(MessageType::text, bytes_of(w), t0, out).kind, Kind::welcome);
  EXPECT_EQ(cs.state(), ClientSession::State::established);
  out.clear();
  cs.send(MessageType::text, bytes_of("hi"), t0, out);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"M1,0;hi"}));
  // Established: still answered.
  out.clear();
  EXPECT_EQ(cs.receive(MessageType::text, bytes_of(p), t0, out).kind, Kind::ping);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"Q5"}));
}

}  // namespace
