// One session end on literal times (docs/resume.md §3, §5): numbering, piggybacked and
// standalone acks, duplicates, gaps, acks out of range, window release and replay.
#include "resume/endpoint.hpp"

#include <gtest/gtest.h>

#include <deque>

#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::close_code;
using tether::resume::Config;
using tether::resume::Endpoint;
using tether::resume::Error;
using tether::resume::Received;
using Kind = Received::Kind;

// An endpoint that is online (as after the opening exchange) with a recorder for its output.
struct Live {
  explicit Live(Config c = {}) : ep(c) { ep.go_online(0, out); }
  Received receive(std::string_view frame, TimePoint at = t0,
                   MessageType type = MessageType::text) {
    held.emplace_back(frame);
    return ep.receive(type, bytes_of(held.back()), at, out);
  }
  void send(std::string_view payload, TimePoint at = t0, MessageType type = MessageType::text) {
    ep.send(type, bytes_of(payload), at, out);
  }
  Endpoint ep;
  Recorder out;
  std::deque<std::string> held;  // received frames stay alive for the payload views
};

TEST(Send, FramesSeqAndPiggybacksTheAck) {
  Live l;
  l.send("hello");
  l.send("bin", t0, MessageType::binary);
  ASSERT_EQ(l.receive("M1,0;x").kind, Kind::deliver);
  l.send("again");
  EXPECT_EQ(l.out.frames, (std::vector<Sent>{{MessageType::text, "M1,0;hello"},
                                             {MessageType::binary, "M2,0;bin"},
                                             {MessageType::text, "M3,1;again"}}));
  EXPECT_EQ(l.ep.window().size(), 3u);
  EXPECT_FALSE(l.ep.ack_pending());  // the data frame carried it
}

TEST(Send, OfflineOnlyStoresTheMessage) {
  Endpoint ep(Config{});
  Recorder out;
  ep.send(MessageType::text, bytes_of("later"), t0, out);
  EXPECT_TRUE(out.frames.empty());
  EXPECT_EQ(ep.window().size(), 1u);
  EXPECT_EQ(ep.go_online(0, out), 1u);
  EXPECT_EQ(out.texts(), (std::vector<std::string>{"M1,0;later"}));
}

TEST(Receive, DeliversInOrderWithAPayloadViewIntoTheMessage) {
  Live l;
  for (uint64_t s = 1; s <= 3; ++s) {
    Received r = l.receive(numbered("M", s) + ",0;p" + std::to_string(s), t0, MessageType::binary);
    ASSERT_EQ(r.kind, Kind::deliver);
    EXPECT_EQ(r.seq, s);
    EXPECT_EQ(r.type, MessageType::binary);
    EXPECT_EQ(text_of(r.payload), numbered("p", s));
    EXPECT_EQ(r.payload.data(), reinterpret_cast<const uint8_t*>(l.held.back().data()) + 5);
  }
  EXPECT_EQ(l.ep.highest_received(), 3u);
  EXPECT_EQ(l.ep.stats().delivered, 3u);
}

TEST(Receive, DuplicatesAreDroppedSilentlyButCounted) {
  Live l;
  ASSERT_EQ(l.receive("M1,0;a").kind, Kind::deliver);
  ASSERT_EQ(l.receive("M2,0;b").kind, Kind::deliver);
  Received r = l.receive("M1,0;a");
  EXPECT_EQ(r.kind, Kind::duplicate);
  EXPECT_EQ(r.seq, 1u);
  EXPECT_TRUE(r.payload.empty());
  EXPECT_EQ(l.receive("M2,0;b").kind, Kind::duplicate);
  EXPECT_EQ(l.ep.stats().duplicates, 2u);
  EXPECT_EQ(l.ep.highest_received(), 2u);
  EXPECT_TRUE(l.out.frames.empty());  // silently: nothing sent at once
  EXPECT_EQ(l.receive("M3,0;c").kind, Kind::deliver);
}

TEST(Receive, DuplicateIsAcknowledgedAgainAfterTheAckDelay) {
  Live l;
  l.receive("M1,0;a", t0);
  l.ep.on_timer(t0 + 50ms, l.out);
  ASSERT_EQ(l.out.texts(), (std::vector<std::string>{"A1"}));
  l.receive("M1,0;a", t0 + 1s);  // the peer did not see it: tell it again
  EXPECT_EQ(l.ep.next_deadline(), t0 + 1s + 50ms);
  l.ep.on_timer(t0 + 1s + 50ms, l.out);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"A1", "A1"}));
}

TEST(Receive, SeqSkippingAheadIsASequenceGapClosedWith1002) {
  Live l;
  ASSERT_EQ(l.receive("M1,0;a").kind, Kind::deliver);
  Received r = l.receive("M3,0;c");
  EXPECT_EQ(r.kind, Kind::error);
  EXPECT_EQ(r.error, Error::sequence_gap);
  EXPECT_EQ(r.message, "sequence gap: got 3, expected 2");
  EXPECT_EQ(close_code(r.error), 1002);
  EXPECT_EQ(l.ep.highest_received(), 1u);
}

TEST(Receive, FirstMessageMustBeSeqOne) {
  Live l;
  Received r = l.receive("M2,0;x");
  EXPECT_EQ(r.error, Error::sequence_gap);
  EXPECT_EQ(r.message, "sequence gap: got 2, expected 1");
}

TEST(Receive, AckAboveWhatWasSentIsInvalid) {
  Live l;
  l.send("a");
  Received r = l.receive("A2");
  EXPECT_EQ(r.kind, Kind::error);
  EXPECT_EQ(r.error, Error::invalid_ack);
  EXPECT_EQ(r.message, "ack 2 is above the highest sequence number sent (1)");
  r = l.receive("M1,5;x");
  EXPECT_EQ(r.error, Error::invalid_ack);
  EXPECT_EQ(l.ep.highest_received(), 0u);  // not delivered
}

TEST(Receive, MalformedFrameIsAnErrorWithTheParserMessage) {
  Live l;
  Received r = l.receive("M01,0;x");
  EXPECT_EQ(r.kind, Kind::error);
  EXPECT_EQ(r.error, Error::malformed_frame);
  EXPECT_EQ(r.message, "data frame: sequence number has a leading zero");
}

TEST(Receive, HelloOrWelcomeAfterTheOpeningExchangeIsUnexpected) {
  Live l;
  Received r = l.receive(R"(H{"v":1,"session":"","last":0})");
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "hello after the opening exchange");
  r = l.receive("W{}");
  EXPECT_EQ(r.error, Error::unexpected_frame);
  EXPECT_EQ(r.message, "welcome after the opening exchange");
}

TEST(Acks, CumulativeAckReleasesTheWindowAndALowerOneIsIgnored) {
  Live l;
  for (int i = 0; i < 5; ++i) l.send("m");
  EXPECT_EQ(l.receive("A3").kind, Kind::ack);
  EXPECT_EQ(l.ep.window().first_seq(), 4u);
  EXPECT_EQ(l.ep.peer_acked(), 3u);
  // A replayed frame may carry its original, older ack.
  EXPECT_EQ(l.receive("M1,1;x").kind, Kind::deliver);
  EXPECT_EQ(l.ep.peer_acked(), 3u);
  EXPECT_EQ(l.ep.window().size(), 2u);
  EXPECT_EQ(l.receive("M2,5;y").kind, Kind::deliver);
  EXPECT_TRUE(l.ep.window().empty());
}

TEST(Acks, StandaloneAckGoesOutAfterAckDelayWhenNothingCarriedIt) {
  Live l;
  EXPECT_EQ(l.ep.next_deadline(), TimePoint::max());
  l.receive("M1,0;a", t0);
  l.receive("M2,0;b", t0 + 20ms);  // the deadline runs from the first unacked message
  EXPECT_EQ(l.ep.next_deadline(), t0 + 50ms);
  l.ep.on_timer(t0 + 49ms, l.out);
  EXPECT_TRUE(l.out.frames.empty());
  l.ep.on_timer(t0 + 50ms, l.out);
  EXPECT_EQ(l.out.frames, (std::vector<Sent>{{MessageType::text, "A2"}}));
  EXPECT_EQ(l.ep.ack_sent(), 2u);
  EXPECT_EQ(l.ep.next_deadline(), TimePoint::max());
  EXPECT_EQ(l.ep.stats().acks_sent, 1u);
}

TEST(Acks, DataSentBeforeTheDelayCarriesTheAckInstead) {
  Live l;
  l.receive("M1,0;ping", t0);
  l.send("pong", t0 + 5ms);
  l.ep.on_timer(t0 + 50ms, l.out);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"M1,1;pong"}));
}

TEST(Acks, StandaloneAckAtOnceAfterAckEveryMessages) {
  Live l;
  for (uint64_t s = 1; s <= 63; ++s) l.receive(numbered("M", s) + ",0;x", t0);
  EXPECT_TRUE(l.out.frames.empty());
  l.receive("M64,0;x", t0);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"A64"}));
  for (uint64_t s = 65; s <= 128; ++s) l.receive(numbered("M", s) + ",0;x", t0);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"A64", "A128"}));
}

TEST(Acks, AckEveryOneAcknowledgesEachMessage) {
  Config c;
  c.ack_every = 1;
  Live l(c);
  l.receive("M1,0;x");
  l.receive("M2,0;x");
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"A1", "A2"}));
}

TEST(Acks, NoAckIsSentWhileOffline) {
  Live l;
  l.receive("M1,0;x", t0);
  l.ep.go_offline();
  EXPECT_EQ(l.ep.next_deadline(), TimePoint::max());
  l.ep.on_timer(t0 + 1s, l.out);
  EXPECT_TRUE(l.out.frames.empty());
}

TEST(Replay, ResendsStoredMessagesAfterLastWithOriginalSeqAndCurrentAck) {
  Live l;
  l.send("a");
  l.send("b", t0, MessageType::binary);
  l.send("c");
  l.receive("M1,0;x");
  l.receive("M2,0;y");
  l.out.clear();
  EXPECT_EQ(l.ep.replay_after(1, l.out), 2u);
  EXPECT_EQ(l.out.frames,
            (std::vector<Sent>{{MessageType::binary, "M2,2;b"}, {MessageType::text, "M3,2;c"}}));
  EXPECT_EQ(l.ep.stats().replayed, 2u);
}

TEST(Replay, GoOnlineReleasesWhatThePeerHasAndResendsTheRest) {
  Live l;
  for (int i = 0; i < 4; ++i) l.send(std::string(1, static_cast<char>('a' + i)));
  l.ep.go_offline();
  l.send("e");  // stored only
  l.out.clear();
  EXPECT_EQ(l.ep.go_online(2, l.out), 3u);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"M3,0;c", "M4,0;d", "M5,0;e"}));
  EXPECT_EQ(l.ep.window().first_seq(), 3u);
}

TEST(PeerLast, MustLieBetweenTheAckedAndTheSent) {
  Live l;
  for (int i = 0; i < 5; ++i) l.send("m");
  l.receive("A2");
  std::string why;
  EXPECT_EQ(l.ep.check_peer_last(6, why), Error::invalid_ack);
  EXPECT_EQ(why, "last 6 is above the highest sequence number sent (5)");
  EXPECT_EQ(l.ep.check_peer_last(1, why), Error::invalid_ack);
  EXPECT_EQ(why, "last 1 is below the ack already received (2)");
  EXPECT_EQ(l.ep.check_peer_last(2, why), Error::none);
  EXPECT_EQ(l.ep.check_peer_last(5, why), Error::none);
}

TEST(EndpointWindow, AgeExpiryIsPartOfTheDeadlineAndForcesOutOnTimer) {
  Config c;
  c.window = 10s;
  Live l(c);
  l.send("a", t0);
  EXPECT_EQ(l.ep.next_deadline(), t0 + 10s);
  l.ep.on_timer(t0 + 10s, l.out);
  EXPECT_TRUE(l.ep.window().empty());
  EXPECT_EQ(l.ep.window().lost_through(), 1u);
  EXPECT_FALSE(l.ep.can_replay_after(0));
  EXPECT_TRUE(l.ep.can_replay_after(1));
}

TEST(Restart, ResetForgetsEverythingAndRenumberingKeepsUnacked) {
  Live l;
  for (int i = 0; i < 3; ++i) l.send(std::to_string(i));
  l.receive("A1");
  l.receive("M1,1;x");
  l.ep.restart_keeping_unacked();
  EXPECT_EQ(l.ep.next_seq(), 3u);
  EXPECT_EQ(l.ep.highest_received(), 0u);
  EXPECT_EQ(l.ep.peer_acked(), 0u);
  l.out.clear();
  l.ep.go_online(0, l.out);
  EXPECT_EQ(l.out.texts(), (std::vector<std::string>{"M1,0;1", "M2,0;2"}));
  l.ep.reset();
  EXPECT_EQ(l.ep.next_seq(), 1u);
  EXPECT_TRUE(l.ep.window().empty());
}

}  // namespace
