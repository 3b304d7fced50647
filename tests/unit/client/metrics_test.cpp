// Client::metrics() against a known exchange with a real server: messages, bytes (equal to what
// the server counted for the same socket), RTT, closes by cause, failed attempts, reconnects,
// offline-queue drops. Every wait is bounded by a guard thread that stops the loop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "tether/client.hpp"
#include "tether/server.hpp"

namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> parse_samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

// Runs `loop` until `done()` or `limit`, checking every 5 ms from a guard thread.
template <class Done>
void run_until(tether::Loop& loop, Done done, std::chrono::milliseconds limit) {
  std::thread guard([&] {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    loop.stop();
  });
  loop.run();
  guard.join();
}

TEST(ClientMetrics, CountAKnownExchange) {
  tether::ServerOptions so;
  so.port = 0;
  tether::Server server(so);
  server.on_message(
      [](tether::Connection& c, std::string_view d, tether::MessageType t) { c.send(d, t); });
  ASSERT_FALSE(server.listen());
  std::thread server_thread([&] { server.run(); });

  tether::Loop loop;
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/";
  co.reconnect = false;
  tether::Client client(loop, co);
  std::atomic<int> echoes{0};
  std::atomic<bool> rtt_seen{false}, ended{false};
  client.on_open([&] { client.ping(); });
  client.on_rtt([&](std::chrono::nanoseconds) {
    rtt_seen = true;
    for (std::size_t n : {5, 10, 300}) client.send(std::string(n, 'm'));
  });
  client.on_message([&](std::string_view, tether::MessageType) {
    if (++echoes == 3) client.close(1000);
  });
  client.on_close([&](const tether::CloseInfo&) { ended = true; });
  client.connect();
  run_until(
      loop, [&] { return ended.load(); }, 10s);
  ASSERT_TRUE(ended);

  const tether::ClientMetrics m = client.metrics();
  EXPECT_EQ(m.connections_opened, 1u);
  EXPECT_EQ(m.reconnects, 0u);
  EXPECT_EQ(m.messages_sent, 3u);
  EXPECT_EQ(m.messages_received, 3u);
  EXPECT_EQ(m.closes(tether::Cause::local_close), 1u);
  uint64_t all_closes = 0;
  for (auto n : m.closes_by_cause) all_closes += n;
  EXPECT_EQ(all_closes, 1u);
  EXPECT_EQ(m.heartbeat_timeouts, 0u);
  EXPECT_EQ(m.rtt_samples, 1u);
  ASSERT_TRUE(m.last_rtt.has_value());
  EXPECT_EQ(m.rtt_sum, *m.last_rtt);
  EXPECT_EQ(m.dropped_send_buffer_full + m.dropped_offline_queue_full, 0u);
  // The client's socket bytes are the server's for the same connection (both read to the end:
  // the client's run ended on EOF, after the server's last write).
  const auto s = parse_samples(server.metrics_text());
  EXPECT_EQ(s.at("tether_received_bytes_total"), std::to_string(m.bytes_sent));
  EXPECT_EQ(s.at("tether_sent_bytes_total"), std::to_string(m.bytes_received));
  EXPECT_GT(m.bytes_sent, 5u + 10 + 300);

  server.stop();
  server_thread.join();
}

TEST(ClientMetrics, FailedAttemptsReconnectsAndOfflineDrops) {
  // A port nobody listens on: bind one, read its number, close it.
  uint16_t dead_port = 0;
  {
    tether::ServerOptions so;
    so.port = 0;
    tether::Server probe(so);
    ASSERT_FALSE(probe.listen());
    dead_port = probe.port();
  }
  tether::Loop loop;
  tether::ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(dead_port) + "/";
  co.max_attempts = 3;
  co.backoff_min = 1ms;
  co.backoff_max = 2ms;
  co.offline_queue_max_messages = 2;
  tether::Client client(loop, co);
  std::atomic<bool> gave_up{false};
  client.on_close([&](const tether::CloseInfo&) {
    if (client.state() == tether::Client::State::closed) gave_up = true;
  });
  loop.post([&] {
    for (int i = 0; i < 5; ++i) client.send("queued");  // 2 fit, 3 are refused
  });
  client.connect();
  run_until(
      loop, [&] { return gave_up.load(); }, 10s);
  ASSERT_TRUE(gave_up);
  const tether::ClientMetrics m = client.metrics();
  EXPECT_EQ(m.connections_opened, 0u);
  // The first attempt and max_attempts (3) reconnects, every one refused.
  EXPECT_EQ(m.reconnects, 3u);
  EXPECT_EQ(m.closes(tether::Cause::connect_failed), 4u);
  EXPECT_EQ(m.dropped_offline_queue_full, 3u);
  EXPECT_EQ(m.messages_sent, 0u);
}

}  // namespace
