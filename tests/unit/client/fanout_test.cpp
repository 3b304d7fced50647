// Fan-out end to end: one publisher, 2,000 subscribers on 127.0.0.1, every subscriber receives
// every message (counted). Bounded by a guard that stops the client loop.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "tether/client.hpp"
#include "tether/server.hpp"

namespace {

using namespace std::chrono_literals;

unsigned fd_limit(unsigned want) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    r.rlim_cur = std::min<rlim_t>(want, r.rlim_max);
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return static_cast<unsigned>(r.rlim_cur);
}

TEST(FanOut, EverySubscriberGetsEveryMessage) {
  const int n = static_cast<int>(std::min(2000u, (fd_limit(8192) - 256) / 2));
  ASSERT_GE(n, 400);
  constexpr int kMessages = 50;
  tether::ServerOptions so;
  so.port = 0;
  so.threads = 2;
  so.shutdown_timeout = 500ms;
  tether::Server server(so);
  std::atomic<int> subscribed{0};
  server.on_message([&](tether::Connection& c, std::string_view d, tether::MessageType) {
    if (d == "sub") {
      server.subscribe(c, "ticks");
      subscribed.fetch_add(1);
    }
  });
  ASSERT_FALSE(server.listen());
  std::thread st([&] { server.run(); });

  tether::Loop loop;
  std::vector<std::unique_ptr<tether::Client>> clients;
  std::vector<int> counts(static_cast<std::size_t>(n), 0);
  std::atomic<long> total{0};
  for (int i = 0; i < n; ++i) {
    tether::ClientOptions co;
    co.url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/";
    co.reconnect = false;
    auto c = std::make_unique<tether::Client>(loop, co);
    auto* cp = c.get();
    c->on_open([cp] { cp->send("sub"); });
    c->on_message([&, i](std::string_view d, tether::MessageType) {
      if (d == "tick " + std::to_string(counts[static_cast<std::size_t>(i)])) {
        ++counts[static_cast<std::size_t>(i)];
        total.fetch_add(1);
      }
    });
    clients.push_back(std::move(c));
  }
  std::thread driver([&] {
    for (auto& c : clients) {
      auto* cp = c.get();
      loop.post([cp] { cp->connect(); });
    }
    for (int i = 0; i < 1500 && subscribed < n; ++i) std::this_thread::sleep_for(10ms);
    const auto t0 = std::chrono::steady_clock::now();
    for (int m = 0; m < kMessages; ++m) server.publish("ticks", "tick " + std::to_string(m));
    for (int i = 0; i < 1500 && total < static_cast<long>(n) * kMessages; ++i)
      std::this_thread::sleep_for(10ms);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("fan-out: %d subscribers x %d messages = %ld deliveries in %.3f s\n", n, kMessages,
                total.load(), s);
    loop.stop();
  });
  loop.run();
  driver.join();
  EXPECT_EQ(subscribed.load(), n);
  EXPECT_EQ(total.load(), static_cast<long>(n) * kMessages);
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(counts[static_cast<std::size_t>(i)], kMessages) << "subscriber " << i;
  EXPECT_EQ(server.dropped_messages(), 0u);
  clients.clear();
  server.stop();
  st.join();
}

}  // namespace
