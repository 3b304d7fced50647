// Client reconnects over real loopback sockets: server restarts (1012 with paced delays), offline
// queues. Every wait is bounded by a guard thread that stops the loop.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "tether/client.hpp"
#include "tether/server.hpp"

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// A server on a thread for the scope of the object.
struct RunningServer {
  explicit RunningServer(tether::ServerOptions o) : server(o) {
    server.on_message([this](tether::Connection& c, std::string_view d, tether::MessageType t) {
      std::lock_guard lock(mu);
      received.emplace_back(d);
      c.send(d, t);
    });
    server.on_open([this](tether::Connection&) {
      std::lock_guard lock(mu);
      open_times.push_back(SteadyClock::now());
    });
    listen_error = server.listen();
    if (!listen_error) thread = std::thread([this] { server.run(); });
  }
  ~RunningServer() { stop(); }
  void stop() {
    if (thread.joinable()) {
      server.stop();
      thread.join();
    }
  }
  tether::Server server;
  std::error_code listen_error;
  std::thread thread;
  std::mutex mu;
  std::vector<std::string> received;
  std::vector<SteadyClock::time_point> open_times;
};

// Runs `loop` until `done()` or `limit`, checking every 10 ms from a guard thread.
template <class Done>
void run_until(tether::Loop& loop, Done done, std::chrono::milliseconds limit) {
  std::thread guard([&] {
    const auto end = SteadyClock::now() + limit;
    while (!done() && SteadyClock::now() < end) std::this_thread::sleep_for(10ms);
    loop.stop();
  });
  loop.run();
  guard.join();
}

unsigned raise_fd_limit(unsigned want) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    r.rlim_cur = std::min<rlim_t>(want, r.rlim_max);
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return static_cast<unsigned>(r.rlim_cur);
}

// A restarting server closes 2,000 clients with 1012 and per-client delays spread over the
// restart window; the clients come back spread out: no 100 ms window holds more than 10% of them.
TEST(Reconnect, ServerRestartSpreadsTheHerd) {
  const unsigned limit = raise_fd_limit(8192);
  const int n = static_cast<int>(std::min(2000u, (limit - 256) / 2));
  ASSERT_GE(n, 400) << "file descriptor limit too low: " << limit;
  const char* env = std::getenv("TETHER_RESTART_SPREAD_MS");
  const auto spread = std::chrono::milliseconds(env ? std::atoi(env) : 2000);

  tether::ServerOptions so;
  so.port = 0;
  so.restart_spread = spread;
  auto first = std::make_unique<RunningServer>(so);
  ASSERT_FALSE(first->listen_error);
  const uint16_t port = first->server.port();

  tether::Loop loop;
  std::atomic<int> opened{0}, reopened{0}, restart_closes{0};
  std::vector<std::unique_ptr<tether::Client>> clients;
  for (int i = 0; i < n; ++i) {
    tether::ClientOptions co;
    co.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
    auto c = std::make_unique<tether::Client>(loop, co);
    auto* cp = c.get();
    c->on_open([&, cp] { (cp->attempt() == 1 ? opened : reopened).fetch_add(1); });
    c->on_close([&](const tether::CloseInfo& info) {
      if (info.code == 1012) restart_closes.fetch_add(1);
    });
    clients.push_back(std::move(c));
  }
  std::thread driver([&] {
    for (auto& c : clients) {
      auto* cp = c.get();
      loop.post([cp] { cp->connect(); });
    }
    for (int i = 0; i < 1000 && opened < n; ++i) std::this_thread::sleep_for(10ms);
    // Restart: the old server tells everyone when to come back, a new one takes the port.
    first->server.stop_for_restart();
    first->thread.join();
    tether::ServerOptions so2 = so;
    so2.port = port;
    auto second = std::make_unique<RunningServer>(so2);
    const auto restarted = SteadyClock::now();
    for (int i = 0; i < 1500 && reopened < n; ++i) std::this_thread::sleep_for(10ms);
    std::vector<SteadyClock::time_point> times;
    {
      std::lock_guard lock(second->mu);
      times = second->open_times;
    }
    loop.stop();
    second->stop();
    // The figure: the busiest 100 ms window after the restart.
    std::sort(times.begin(), times.end());
    std::size_t busiest = 0;
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
      while (times[i] - times[j] >= 100ms) ++j;
      busiest = std::max(busiest, i - j + 1);
    }
    const double last_s =
        times.empty() ? 0 : std::chrono::duration<double>(times.back() - restarted).count();
    std::printf(
        "restart herd: %d clients, spread %lld ms: busiest 100 ms window %zu (%.1f%%), "
        "all back within %.2f s\n",
        n, static_cast<long long>(spread.count()), busiest, 100.0 * busiest / n, last_s);
    EXPECT_EQ(static_cast<int>(times.size()), n);
    EXPECT_LE(busiest, static_cast<std::size_t>(n / 10));
  });
  loop.run();
  driver.join();
  EXPECT_EQ(opened.load(), n);
  EXPECT_EQ(restart_closes.load(), n);
  EXPECT_EQ(reopened.load(), n);
  clients.clear();
}

tether::ClientOptions queued_client(uint16_t port, tether::ClientOptions::QueueOverflow policy) {
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  co.backoff_min = 20ms;
  co.backoff_max = 50ms;
  co.offline_queue_max_messages = 2;
  co.offline_queue_overflow = policy;
  return co;
}

uint16_t free_port() {
  tether::ServerOptions so;
  so.port = 0;
  tether::Server s(so);
  EXPECT_FALSE(s.listen());
  return s.port();  // closed again when `s` goes away
}

// Sends while the server is down wait in the bounded queue (overflow: reject or drop oldest)
// and go out in order once a reconnect succeeds.
TEST(Reconnect, OfflineQueueRejectsOrDropsOldestThenFlushesInOrder) {
  for (auto policy : {tether::ClientOptions::QueueOverflow::reject,
                      tether::ClientOptions::QueueOverflow::drop_oldest}) {
    const uint16_t port = free_port();
    tether::Loop loop;
    tether::Client c(loop, queued_client(port, policy));
    std::vector<std::string> echoes;
    std::vector<tether::SendStatus> statuses;
    int failed_attempts = 0;
    std::unique_ptr<RunningServer> server;
    c.on_close([&](const tether::CloseInfo& i) {
      if (i.cause == tether::Cause::connect_failed && ++failed_attempts == 2) {
        // Nothing listens yet: queue three messages, then bring the server up.
        statuses.push_back(c.send("one"));
        statuses.push_back(c.send("two"));
        statuses.push_back(c.send("three"));
        tether::ServerOptions so;
        so.port = port;
        so.shutdown_timeout = 200ms;  // the client's loop is stopped before the server is
        server = std::make_unique<RunningServer>(so);
      }
    });
    c.on_message([&](std::string_view d, tether::MessageType) { echoes.emplace_back(d); });
    loop.post([&] { c.connect(); });
    run_until(
        loop, [&] { return echoes.size() >= 2; }, 5000ms);
    ASSERT_EQ(statuses.size(), 3u);
    ASSERT_EQ(echoes.size(), 2u);
    if (policy == tether::ClientOptions::QueueOverflow::reject) {
      EXPECT_EQ(statuses[2], tether::SendStatus::dropped);
      EXPECT_EQ(echoes, (std::vector<std::string>{"one", "two"}));
    } else {
      EXPECT_EQ(statuses[2], tether::SendStatus::success);
      EXPECT_EQ(echoes, (std::vector<std::string>{"two", "three"}));
    }
    EXPECT_GE(c.attempt(), 3u);
  }
}

// Max attempts: the client gives up and run() returns.
TEST(Reconnect, GivesUpAfterMaxAttempts) {
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(free_port()) + "/";
  co.backoff_min = 10ms;
  co.backoff_max = 20ms;
  co.max_attempts = 3;
  tether::Client c(co);
  int closes = 0;
  std::vector<unsigned> attempts;
  c.on_close([&](const tether::CloseInfo&) { ++closes; });
  c.on_reconnecting([&](unsigned a, std::chrono::milliseconds d) {
    attempts.push_back(a);
    EXPECT_GE(d, 10ms);
    EXPECT_LE(d, 20ms);
  });
  c.connect();
  c.run();  // returns: no reconnect follows the 4th failure
  EXPECT_EQ(closes, 4);
  EXPECT_EQ(attempts, (std::vector<unsigned>{2, 3, 4}));
  EXPECT_EQ(c.state(), tether::Client::State::closed);
}

}  // namespace

namespace {

// Several URLs: each attempt takes the next one, so a dead node is skipped for a live one.
TEST(Reconnect, RotatesThroughUrls) {
  tether::ServerOptions so;
  so.port = 0;
  so.shutdown_timeout = 200ms;
  RunningServer live(so);
  ASSERT_FALSE(live.listen_error);
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(free_port()) + "/dead";
  co.fallback_urls = {"ws://127.0.0.1:" + std::to_string(live.server.port()) + "/live"};
  co.backoff_min = 10ms;
  co.backoff_max = 20ms;
  tether::Client c(co);
  std::string opened_url;
  unsigned opened_attempt = 0;
  c.on_open([&] {
    opened_url = c.url();
    opened_attempt = c.attempt();
    c.close();
  });
  c.connect();
  c.run();
  EXPECT_EQ(opened_url, co.fallback_urls[0]);
  EXPECT_EQ(opened_attempt, 2u);
}

// The application's policy overrides the default: here, never reconnect after 1001.
TEST(Reconnect, ApplicationPolicyDecides) {
  tether::ServerOptions so;
  so.port = 0;
  auto server = std::make_unique<RunningServer>(so);
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(server->server.port()) + "/";
  std::vector<uint16_t> asked;
  co.should_reconnect = [&](const tether::CloseInfo& i) {
    asked.push_back(i.code);
    return false;
  };
  tether::Client c(co);
  std::thread stopper;
  c.on_open([&] { stopper = std::thread([&] { server->stop(); }); });  // 1001 going away
  c.connect();
  c.run();  // returns: the policy said no
  stopper.join();
  EXPECT_EQ(asked, (std::vector<uint16_t>{1001}));
  EXPECT_EQ(c.state(), tether::Client::State::closed);
}

}  // namespace
