// Client and server ends talking through an in-memory wire on a virtual clock, with the
// connection cut at random points (frames in flight are lost), reconnects with hello/welcome
// and replay: each direction must deliver exactly 1..N, in order, once (docs/resume.md §6).
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <optional>

#include "resume/client_session.hpp"
#include "resume/session_store.hpp"
#include "resume_harness.hpp"

namespace {

using namespace resume_test;
using tether::resume::ClientSession;
using tether::resume::Config;
using tether::resume::Received;
using tether::resume::Session;
using tether::resume::SessionId;
using tether::resume::SessionStore;
using Kind = Received::Kind;
using Outcome = Received::Outcome;

// One client, one server, one wire. Connections are numbered; a cut drops whatever is in flight.
struct World {
  explicit World(const Config& c, uint64_t seed) : ids(seed ^ 0xABCDEF), store(c, ids), client(c) {}

  // ---- the wire
  void client_out(MessageType type, std::span<const uint8_t> b) {
    if (connected) c2s.push_back({type, text_of(b)});
  }
  // Frames written to connection `via`: only the current one reaches the client.
  void server_out(uint64_t via, MessageType type, std::span<const uint8_t> b) {
    if (connected && via == conn) s2c.push_back({type, text_of(b)});
  }
  auto client_sink() {
    return [this](MessageType t, std::span<const uint8_t> b) { client_out(t, b); };
  }
  auto server_sink(uint64_t via) {
    return [this, via](MessageType t, std::span<const uint8_t> b) { server_out(via, t, b); };
  }
  auto server_sink() { return server_sink(conn); }

  // ---- connection lifecycle
  void connect() {
    connected = true;
    conn = ++last_conn;
    conn_session = nullptr;
    client.open(now, client_sink());
  }
  // The transport dies: frames in flight are lost. The server notices now or (takeover) only
  // after the client's next hello.
  void cut(bool server_notices) {
    c2s.clear();
    s2c.clear();
    connected = false;
    client.disconnected(now);
    if (server_notices) {
      if (conn_session) store.detach(*conn_session, conn, now);
    } else if (conn_session) {
      stale.emplace(conn, conn_session);
    }
    conn_session = nullptr;
  }

  // ---- applications
  void client_app_send() {
    ++client_sent;
    const std::string p = numbered("c", client_sent);
    client.send(MessageType::text, bytes_of(p), now, client_sink());
  }
  void server_app_send() {
    Session* s = store.find(app_session);
    ASSERT_NE(s, nullptr);
    ++server_sent;
    const std::string p = numbered("s", server_sent);
    s->endpoint.send(MessageType::binary, bytes_of(p), now, server_sink(s->owner));
  }

  // ---- delivery of one frame each way
  void to_server() {
    Sent f = std::move(c2s.front());
    c2s.pop_front();
    if (!conn_session) {
      auto h = store.accept_hello(f.type, bytes_of(f.bytes), conn, now, server_sink());
      ASSERT_EQ(h.error, tether::resume::Error::none) << h.message;
      if (app_session.empty()) {
        ASSERT_EQ(h.outcome, Outcome::new_session);
        app_session = h.session->id;
      } else if (h.outcome == Outcome::new_session) {
        // The first welcome was cut off: the client never learnt the id, so that session is
        // orphaned (it expires) and the server application starts over with the new one.
        ASSERT_EQ(welcomes, 0u);
        ASSERT_EQ(client_got, 0u);
        ASSERT_EQ(server_got, 0u);  // the client sends nothing before its welcome
        server_sent = 0;
        app_session = h.session->id;
        ++orphans;
      } else {
        ASSERT_EQ(h.outcome, Outcome::resumed) << h.reason;
        ASSERT_EQ(h.session->id, app_session);
      }
      if (h.previous_owner) {
        ASSERT_TRUE(stale && stale->first == h.previous_owner);
        ++takeovers;
      }
      conn_session = h.session;
      if (stale) {  // the old connection's close arrives late and must change nothing
        if (h.outcome == Outcome::resumed) store.detach(*h.session, stale->first, now);
        if (h.outcome == Outcome::new_session) store.detach(*stale->second, stale->first, now);
        stale.reset();
      }
      return;
    }
    Received r = conn_session->endpoint.receive(f.type, bytes_of(f.bytes), now, server_sink());
    ASSERT_NE(r.kind, Kind::error) << r.message;
    ASSERT_NE(r.kind, Kind::duplicate) << r.seq;
    if (r.kind == Kind::deliver) {
      ++server_got;
      ASSERT_EQ(r.type, MessageType::text);
      ASSERT_EQ(text_of(r.payload), numbered("c", server_got));
    }
  }
  void to_client() {
    Sent f = std::move(s2c.front());
    s2c.pop_front();
    Received r = client.receive(f.type, bytes_of(f.bytes), now, client_sink());
    ASSERT_NE(r.kind, Kind::error) << r.message;
    ASSERT_NE(r.kind, Kind::duplicate) << r.seq;
    if (r.kind == Kind::welcome) {
      ASSERT_NE(r.outcome, Outcome::resume_failed) << r.reason;
      ++welcomes;
    }
    if (r.kind == Kind::deliver) {
      ++client_got;
      ASSERT_EQ(r.type, MessageType::binary);
      ASSERT_EQ(text_of(r.payload), numbered("s", client_got));
    }
  }

  void run_timers() {
    if (client.next_deadline() <= now) client.on_timer(now, client_sink());
    if (conn_session && conn_session->endpoint.next_deadline() <= now)
      conn_session->endpoint.on_timer(now, server_sink());
    if (store.next_deadline() <= now) store.expire(now);
  }

  TimePoint now = t0;
  SeededRandom ids;
  SessionStore store;
  ClientSession client;
  bool connected = false;
  uint64_t conn = 0, last_conn = 0;
  Session* conn_session = nullptr;                     // the session the current connection carries
  std::optional<std::pair<uint64_t, Session*>> stale;  // a cut the server has not noticed
  SessionId app_session;
  std::deque<Sent> c2s, s2c;
  uint64_t client_sent = 0, server_sent = 0, client_got = 0, server_got = 0;
  uint64_t welcomes = 0, takeovers = 0, orphans = 0;
};

struct Coverage {
  uint64_t cuts = 0, cuts_awaiting_welcome = 0, cuts_with_frames_in_flight = 0, takeovers = 0,
           replayed = 0;
};

void run(uint64_t seed, uint64_t n, Coverage& cov) {
  SCOPED_TRACE(numbered("seed ", seed));
  SeededRandom rng(seed);
  World w(Config{}, seed);
  w.connect();
  for (uint64_t step = 0; step < 2'000'000; ++step) {
    if (w.client_got == n && w.server_got == n) break;
    switch (rng.below(12)) {
      case 0:
      case 1:
        if (w.client_sent < n) w.client_app_send();
        break;
      case 2:
      case 3:
        if (w.server_sent < n && !w.app_session.empty()) w.server_app_send();
        break;
      case 4:
      case 5:
      case 6:
        if (!w.c2s.empty()) w.to_server();
        break;
      case 7:
      case 8:
      case 9:
        if (!w.s2c.empty()) w.to_client();
        break;
      case 10:
        w.now += std::chrono::milliseconds(rng.below(40));
        w.run_timers();
        break;
      case 11:
        // Cut about once per 60 steps: dozens of cuts per run, at every kind of moment.
        if (rng.below(5) == 0) {
          ++cov.cuts;
          if (w.client.state() == ClientSession::State::awaiting_welcome)
            ++cov.cuts_awaiting_welcome;
          if (!w.c2s.empty() || !w.s2c.empty()) ++cov.cuts_with_frames_in_flight;
          w.cut(/*server_notices=*/rng.below(3) != 0);
          w.now += std::chrono::milliseconds(rng.below(5000));  // the outage
          w.run_timers();
          w.connect();
        }
        break;
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  ASSERT_EQ(w.server_got, n);
  ASSERT_EQ(w.client_got, n);
  EXPECT_EQ(w.client.endpoint().stats().duplicates, 0u);
  cov.takeovers += w.takeovers;
  cov.replayed += w.client.endpoint().stats().replayed;
  // Let the acks flow: both windows drain.
  for (int i = 0; i < 4; ++i) {
    while (!w.c2s.empty()) w.to_server();
    while (!w.s2c.empty()) w.to_client();
    w.now += std::chrono::milliseconds(50);
    w.run_timers();
  }
  EXPECT_TRUE(w.client.endpoint().window().empty());
  EXPECT_TRUE(w.conn_session->endpoint.window().empty());
  EXPECT_NE(w.store.find(w.app_session), nullptr);
  EXPECT_LE(w.store.size(), 1u + w.orphans);  // orphans wait for their expiry
}

TEST(EndToEnd, BothDirectionsDeliverOneToNInOrderAcrossRandomCuts) {
  Coverage cov;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    run(seed, 1000, cov);
    if (HasFatalFailure()) return;
  }
  // The cuts landed everywhere that matters.
  RecordProperty("cuts", static_cast<int>(cov.cuts));
  std::printf(
      "cuts %llu (awaiting welcome %llu, frames in flight %llu), takeovers %llu, "
      "client replays %llu\n",
      static_cast<unsigned long long>(cov.cuts),
      static_cast<unsigned long long>(cov.cuts_awaiting_welcome),
      static_cast<unsigned long long>(cov.cuts_with_frames_in_flight),
      static_cast<unsigned long long>(cov.takeovers),
      static_cast<unsigned long long>(cov.replayed));
  EXPECT_GT(cov.cuts, 500u);
  EXPECT_GT(cov.cuts_awaiting_welcome, 10u);
  EXPECT_GT(cov.cuts_with_frames_in_flight, 100u);
  EXPECT_GT(cov.takeovers, 10u);
  EXPECT_GT(cov.replayed, 100u);
}

// ---- scripted scenarios through the same wire

struct Scripted : World {
  Scripted(const Config& c) : World(c, 99) {}
  void flush() {
    while (!c2s.empty() || !s2c.empty()) {
      while (!c2s.empty()) to_server();
      while (!s2c.empty()) to_client();
    }
  }
  // Reconnects and runs the hello through the store by hand (World insists on resuming).
  tether::resume::HelloResult hello_by_hand() {
    connected = true;
    conn = ++last_conn;
    client.open(now, client_sink());
    Sent hello = std::move(c2s.front());
    c2s.pop_front();
    return store.accept_hello(hello.type, bytes_of(hello.bytes), conn, now, server_sink());
  }
  Received welcome_by_hand() {
    Sent welcome = std::move(s2c.front());
    s2c.pop_front();
    return client.receive(welcome.type, bytes_of(welcome.bytes), now, client_sink());
  }
};

TEST(EndToEnd, OutageLongerThanTheWindowStartsAFreshSession) {
  Config c;
  c.window = 2min;
  Scripted w(c);
  w.connect();
  w.flush();
  for (int i = 0; i < 10; ++i) w.client_app_send();
  for (int i = 0; i < 5; ++i) w.to_server();  // c1..c5 arrive, their ack never comes back
  w.cut(true);
  w.now += 3min;
  w.run_timers();
  EXPECT_EQ(w.store.size(), 0u);  // forgotten

  // The client's own window aged out too, so its hello asks for a new session.
  auto h = w.hello_by_hand();
  EXPECT_EQ(h.outcome, Outcome::new_session);
  Received r = w.welcome_by_hand();
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "replay window exceeded (client)");
  EXPECT_EQ(r.replayed, 0u);  // c1..c10 aged out: c6..c10 are lost
}

TEST(EndToEnd, ResumeFailureResendsUnackedMessagesAtLeastOnce) {
  Scripted w(Config{});
  w.connect();
  w.flush();
  for (int i = 0; i < 10; ++i) w.client_app_send();
  for (int i = 0; i < 5; ++i) w.to_server();  // c1..c5 delivered, never acknowledged
  w.cut(true);
  w.store.end(*w.store.find(w.app_session));  // the server lost the session (say, a restart)
  w.now += 1s;

  auto h = w.hello_by_hand();
  ASSERT_EQ(h.reason, "unknown session");
  Received r = w.welcome_by_hand();
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "unknown session");
  EXPECT_EQ(r.replayed, 10u);
  // In the fresh session c1..c10 arrive again as 1..10: c1..c5 twice in all.
  std::vector<std::string> got;
  while (!w.c2s.empty()) {
    Received d = h.session->endpoint.receive(w.c2s.front().type, bytes_of(w.c2s.front().bytes),
                                             w.now, w.server_sink());
    ASSERT_EQ(d.kind, Kind::deliver) << d.message;
    EXPECT_EQ(d.seq, got.size() + 1);
    got.push_back(text_of(d.payload));
    w.c2s.pop_front();
  }
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front(), "c1");
  EXPECT_EQ(got.back(), "c10");
}

TEST(EndToEnd, ServerWindowExceededWhileTheClientIsAway) {
  Config c;
  c.max_messages = 50;
  Scripted w(c);
  w.connect();
  w.flush();
  w.cut(true);
  for (int i = 0; i < 60; ++i) w.server_app_send();  // s1..s10 forced out, never sent
  auto h = w.hello_by_hand();
  EXPECT_EQ(h.outcome, Outcome::resume_failed);
  EXPECT_EQ(h.reason, "replay window exceeded");
  Received r = w.welcome_by_hand();
  EXPECT_EQ(r.outcome, Outcome::resume_failed);
  EXPECT_EQ(r.reason, "replay window exceeded");
  EXPECT_NE(w.client.session(), w.app_session);
  EXPECT_TRUE(w.s2c.empty());  // the old session's messages are not carried over
}

TEST(EndToEnd, NewSessionThenCleanResumeKeepsNumbering) {
  Scripted w(Config{});
  w.connect();
  w.flush();
  for (int i = 0; i < 3; ++i) w.client_app_send();
  for (int i = 0; i < 3; ++i) w.server_app_send();
  w.flush();
  w.cut(true);
  w.client_app_send();
  w.server_app_send();
  w.connect();
  w.flush();
  EXPECT_EQ(w.server_got, 4u);
  EXPECT_EQ(w.client_got, 4u);
  EXPECT_EQ(w.welcomes, 2u);
  EXPECT_EQ(w.client.endpoint().next_seq(), 5u);
}

}  // namespace
