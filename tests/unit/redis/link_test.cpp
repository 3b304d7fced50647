// redis::Link against a real redis-server started by the test: commands and binary-safe replies,
// pub/sub, and what callers see when Redis goes away and comes back (every waiting callback gets
// nullptr, state transitions, reconnection with backoff). The loop is driven with run_once in
// bounded loops; nothing sleeps to wait for a timer.
#include "redis/link.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using tether::redis::Link;
using tether::redis::LinkConfig;
using tether::redis::Reply;

// Runs the loop until `done()` or `limit` of real time has passed.
template <class F>
bool run_until(tether::loop::EventLoop& loop, F done, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) loop.run_once(10);
  return done();
}

LinkConfig config_for(const tether_test::RedisServer& r) {
  LinkConfig c;
  std::string err;
  EXPECT_TRUE(tether::redis::parse_redis_url(r.url(), c, err)) << err;
  c.backoff.min = 20ms;
  c.backoff.max = 100ms;
  return c;
}

TEST(RedisUrl, Parses) {
  LinkConfig c;
  std::string err;
  ASSERT_TRUE(tether::redis::parse_redis_url("redis://10.0.0.5:6380/2", c, err));
  EXPECT_EQ(c.host, "10.0.0.5");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.db, 2);
  ASSERT_TRUE(tether::redis::parse_redis_url("redis://redis", c, err));
  EXPECT_EQ(c.host, "redis");
  EXPECT_FALSE(tether::redis::parse_redis_url("http://x", c, err));
  EXPECT_FALSE(tether::redis::parse_redis_url("redis://x:0", c, err));
  EXPECT_FALSE(tether::redis::parse_redis_url("redis://x:6379/db", c, err));
}

TEST(RedisLink, CommandsRepliesInOrderBinarySafe) {
  tether_test::RedisServer redis;
  tether::loop::EventLoop loop;
  tether::protocol::SystemRandom rng;
  Link link(loop, config_for(redis), rng);
  link.start();
  ASSERT_TRUE(run_until(loop, [&] { return link.up(); }));
  const std::string value("bin\0ary\r\n", 9);
  std::vector<std::string> got;
  link.command({"SET", "k", value}, [&](const Reply* r) { got.emplace_back(r ? r->str() : "X"); });
  link.command({"GET", "k"}, [&](const Reply* r) { got.emplace_back(r ? r->str() : "X"); });
  link.command({"INCR", "k"},
               [&](const Reply* r) { got.emplace_back(r && r->is_error() ? "error" : "X"); });
  ASSERT_TRUE(run_until(loop, [&] { return got.size() == 3; }));
  EXPECT_EQ(got[0], "OK");
  EXPECT_EQ(got[1], value);
  EXPECT_EQ(got[2], "error");
}

TEST(RedisLink, PublishReachesPatternSubscriber) {
  tether_test::RedisServer redis;
  tether::loop::EventLoop loop;
  tether::protocol::SystemRandom rng;
  Link pub(loop, config_for(redis), rng), sub(loop, config_for(redis), rng);
  std::vector<std::pair<std::string, std::string>> msgs;
  sub.psubscribe({"t:*"}, [&](std::string_view ch, std::string_view payload) {
    if (ch != "t:warmup") msgs.emplace_back(ch, payload);  // warmups may still be arriving
  });
  pub.start();
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return pub.up() && sub.up(); }));
  // The subscription is in place once a PUBLISH counts one receiver.
  long long receivers = 0;
  for (int i = 0; i < 100 && receivers == 0; ++i) {
    bool done = false;
    pub.command({"PUBLISH", "t:warmup", "w"}, [&](const Reply* r) {
      receivers = r ? r->integer() : 0;
      done = true;
    });
    run_until(loop, [&] { return done; });
  }
  ASSERT_EQ(receivers, 1);
  for (int i = 0; i < 100; ++i) pub.command({"PUBLISH", "t:x", std::to_string(i)}, nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return msgs.size() == 100; }));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(msgs[i].first, "t:x");
    EXPECT_EQ(msgs[i].second, std::to_string(i));
  }
  EXPECT_FALSE(sub.command({"GET", "x"}, nullptr));  // a subscriber takes no commands
}

TEST(RedisLink, DownAndBackAgain) {
  tether_test::RedisServer redis;
  tether::loop::EventLoop loop;
  tether::protocol::SystemRandom rng;
  Link link(loop, config_for(redis), rng);
  std::vector<bool> states;
  link.on_state = [&](bool up) { states.push_back(up); };
  link.start();
  ASSERT_TRUE(run_until(loop, [&] { return link.up(); }));
  // A command in flight when Redis dies gets nullptr; so does one given while it is down.
  int failed = 0;
  redis.stop();
  link.command({"BLPOP", "never", "10"}, [&](const Reply* r) { failed += r == nullptr; });
  ASSERT_TRUE(run_until(loop, [&] { return !link.up(); }));
  EXPECT_EQ(failed, 1);
  EXPECT_FALSE(link.command({"PING"}, [&](const Reply* r) { failed += r == nullptr; }));
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(states, (std::vector<bool>{true, false}));
  redis.start();
  ASSERT_TRUE(run_until(loop, [&] { return link.up(); }));
  std::optional<std::string> pong;
  link.command({"PING"}, [&](const Reply* r) { pong = r ? std::string(r->str()) : "X"; });
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }));
  EXPECT_EQ(*pong, "PONG");
  EXPECT_EQ(states, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(link.reconnects(), 1u);
}

TEST(RedisLink, UnreachableRedisKeepsRetrying) {
  tether::loop::EventLoop loop;
  tether::protocol::SystemRandom rng;
  LinkConfig c;
  c.port = tether_test::free_port();  // nothing listens there
  c.backoff.min = 10ms;
  c.backoff.max = 20ms;
  Link link(loop, c, rng);
  link.start();
  run_until(
      loop, [] { return false; }, 200ms);
  EXPECT_FALSE(link.up());
  EXPECT_NE(link.last_error().find("Connection refused"), std::string::npos) << link.last_error();
}

}  // namespace
