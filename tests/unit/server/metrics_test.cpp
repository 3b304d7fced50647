// /metrics against a real server: a known sequence of events from raw sockets, then a scrape
// over a raw socket, and every counter checked for its exact value (bytes included: each raw
// peer counts what it wrote and read, and reads until EOF). docs/cli.md#metrics lists them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "raw_peer.hpp"
#include "tether/server.hpp"

namespace {

using tether::MessageType;
using tether_test::close_code_of;
using tether_test::frame;
using tether_test::RawPeer;
using namespace std::chrono_literals;

// An echo server on a free port, on its own thread; "flood N" answers N 64 KiB messages at once.
class MetricsServer {
 public:
  // `setup` adds handlers before the server runs.
  explicit MetricsServer(const std::function<void(tether::ServerOptions&)>& tweak = {},
                         const std::function<void(tether::Server&)>& setup = {}) {
    tether::ServerOptions o;
    o.port = 0;
    o.shutdown_timeout = 500ms;
    if (tweak) tweak(o);
    server_ = std::make_unique<tether::Server>(o);
    server_->on_message([](tether::Connection& c, std::string_view d, MessageType t) {
      if (d.starts_with("flood ")) {
        const std::string chunk(64 * 1024, 'f');
        for (int i = 0, n = std::stoi(std::string(d.substr(6))); i < n; ++i)
          c.send(chunk, MessageType::binary);
        return;
      }
      c.send(d, t);
    });
    if (setup) setup(*server_);
    EXPECT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  ~MetricsServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  tether::Server& server() { return *server_; }

 private:
  std::unique_ptr<tether::Server> server_;
  std::thread thread_;
};

// "name{labels}" -> value for every sample line of a text exposition.
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

struct Scrape {
  std::string head, body;
  std::map<std::string, std::string> samples;
  std::size_t bytes_sent = 0, bytes_received = 0;  // by the scraper
  std::string value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? "<absent>" : it->second;
  }
};

// GET `path` over a raw socket, read to EOF.
Scrape scrape(uint16_t port, const std::string& method = "GET",
              const std::string& path = "/metrics") {
  RawPeer p(port);
  EXPECT_TRUE(p.connected());
  p.write(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  p.wait_eof();
  Scrape s;
  s.head = p.read_http_head();
  s.body = p.read_until([](const std::string&) { return true; });
  s.samples = parse_samples(s.body);
  s.bytes_sent = p.bytes_sent();
  s.bytes_received = p.bytes_received();
  return s;
}

// Reads the next data or close frame, answering nothing and skipping server pings (a slow run
// may see a heartbeat ping; its bytes are still counted by the peer).
bool read_data_frame(RawPeer& p, uint8_t& op, std::string& payload) {
  for (int i = 0; i < 10; ++i) {
    if (!p.read_frame(op, payload)) return false;
    if (op != 0x9) return true;
  }
  return false;
}

std::string close_frame(uint16_t code) {
  std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return frame(0x88, payload);
}

// A clean close from the client side (1000), then everything up to EOF.
void close_and_drain(RawPeer& p) {
  p.write(close_frame(1000));
  EXPECT_TRUE(p.wait_eof());
}

// The heartbeat of the first test: short, so the silent client is dropped quickly, yet long
// enough that no busy client goes quiet that long, also under the sanitizers' slowdown.
std::chrono::milliseconds heartbeat() {
  const char* s = std::getenv("TETHER_SANITIZE");
  return s && std::string(s) == "1" ? 1200ms : 400ms;
}

TEST(Metrics, CountersMatchAKnownSequenceOfEvents) {
  MetricsServer s([](tether::ServerOptions& o) {
    o.ping_interval = heartbeat();
    o.ping_timeout = heartbeat();
    o.allowed_origins = {"https://ok.example"};
    o.max_control_frames_per_second = 5;
    o.send_buffer_limit = 64 * 1024;
    o.send_buffer_max = 256 * 1024;
    o.send_overflow = tether::ServerOptions::SendOverflow::drop;
  });
  std::size_t client_wrote = 0, client_read = 0;  // over every socket the server counted
  auto account = [&](const RawPeer& p) {
    client_wrote += p.bytes_sent();
    client_read += p.bytes_received();
  };

  // A scrape before anything happened: its own bytes count too.
  const Scrape first = scrape(s.port());
  EXPECT_EQ(first.value("tether_connections_opened_total"), "0");
  client_wrote += first.bytes_sent;
  client_read += first.bytes_received;

  // 3 clients echo 4 text messages each (sizes across the 7-bit and 16-bit length forms), then
  // close with 1000.
  const std::vector<std::size_t> sizes = {1, 125, 126, 1000};
  for (int c = 0; c < 3; ++c) {
    RawPeer p(s.port());
    ASSERT_TRUE(p.upgrade());
    for (std::size_t n : sizes) {
      const std::string text(n, static_cast<char>('a' + c));
      p.write(frame(0x81, text));
      uint8_t op = 0;
      std::string payload;
      ASSERT_TRUE(read_data_frame(p, op, payload));
      EXPECT_EQ(op, 0x1);
      EXPECT_EQ(payload, text);
    }
    close_and_drain(p);
    account(p);
  }

  // One client asks for 10 x 64 KiB at once: 3 fit under send_buffer_max (256 KiB), 7 are
  // dropped (SendOverflow::drop keeps the connection).
  {
    RawPeer p(s.port());
    ASSERT_TRUE(p.upgrade());
    p.write(frame(0x81, "flood 10"));
    for (int i = 0; i < 3; ++i) {
      uint8_t op = 0;
      std::string payload;
      ASSERT_TRUE(read_data_frame(p, op, payload));
      EXPECT_EQ(op, 0x2);
      EXPECT_EQ(payload.size(), 64u * 1024);
    }
    close_and_drain(p);
    account(p);
  }

  // A browser from another origin: 403.
  {
    RawPeer p(s.port());
    const std::string head = p.upgrade_response("Origin: https://evil.example\r\n");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << head;
    p.wait_eof();
    account(p);
  }

  // A ping flood: 20 pings in one write against a budget of 5 per second: 1008.
  {
    RawPeer p(s.port());
    ASSERT_TRUE(p.upgrade());
    std::string pings;
    for (int i = 0; i < 20; ++i) pings += frame(0x89, "p");
    p.write(pings);
    uint8_t op = 0;
    std::string payload;
    bool closed = false;
    while (!closed && p.read_frame(op, payload)) closed = op == 0x8;
    EXPECT_TRUE(closed);
    EXPECT_EQ(close_code_of(payload), 1008);
    p.wait_eof();
    account(p);
  }

  // Two silent clients: the server pings both after one interval. One answers with the pong (one
  // RTT sample) and closes 1000; the other never answers and is dropped after two.
  {
    RawPeer answers(s.port()), silent(s.port());
    ASSERT_TRUE(answers.upgrade());
    ASSERT_TRUE(silent.upgrade());
    uint8_t op = 0;
    std::string payload;
    ASSERT_TRUE(answers.read_frame(op, payload));
    ASSERT_EQ(op, 0x9) << "expected the heartbeat ping";
    answers.write(frame(0x8A, payload));  // the pong echoes the ping's payload (§5.5.3)
    close_and_drain(answers);
    account(answers);
    EXPECT_TRUE(silent.wait_eof());  // dropped: heartbeat timeout, no close frame
    account(silent);
  }

  const Scrape m = scrape(s.port());
  EXPECT_TRUE(m.head.starts_with("HTTP/1.1 200")) << m.head;
  EXPECT_NE(m.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << m.head;
  client_wrote += m.bytes_sent;  // the request was read before the page was rendered

  EXPECT_EQ(m.value("tether_connections_opened_total"), "7");
  EXPECT_EQ(m.value("tether_connections_open"), "0");
  EXPECT_EQ(m.value("tether_connections_closed_total{cause=\"remote_close\",code=\"1000\"}"), "5");
  EXPECT_EQ(m.value("tether_connections_closed_total{cause=\"heartbeat_timeout\",code=\"1006\"}"),
            "1");
  EXPECT_EQ(m.value("tether_connections_closed_total{cause=\"protocol_error\",code=\"1008\"}"),
            "1");
  EXPECT_EQ(m.value("tether_heartbeat_timeouts_total"), "1");
  EXPECT_EQ(m.value("tether_handshake_rejections_total{status=\"403\"}"), "1");
  EXPECT_EQ(m.value("tether_handshake_failures_total{cause=\"handshake_timeout\"}"), "<absent>");
  EXPECT_EQ(m.value("tether_received_messages_total"), "13");  // 12 echoed + "flood 10"
  EXPECT_EQ(m.value("tether_sent_messages_total"), "15");      // 12 echoes + 3 of the flood
  EXPECT_EQ(m.value("tether_dropped_messages_total{reason=\"send_buffer_full\"}"), "7");
  EXPECT_EQ(m.value("tether_dropped_messages_total{reason=\"slow_subscriber\"}"), "0");
  EXPECT_EQ(m.value("tether_rtt_seconds_count"), "1");
  EXPECT_EQ(m.value("tether_rtt_seconds_bucket{le=\"+Inf\"}"), "1");
  EXPECT_EQ(m.value("tether_rtt_seconds_bucket{le=\"10\"}"), "1");  // a loopback round trip
  EXPECT_EQ(m.value("tether_send_queue_bytes"), "0");
  EXPECT_EQ(m.value("tether_received_bytes_total"), std::to_string(client_wrote));
  EXPECT_EQ(m.value("tether_sent_bytes_total"), std::to_string(client_read));
  EXPECT_EQ(m.value("tether_resumes_total"), "0");
  EXPECT_EQ(m.value("tether_redis_up"), "<absent>");
  EXPECT_EQ(m.value("tether_build_info{version=\"0.1.0\"}"), "1");
  // The application's view is the same page.
  EXPECT_EQ(parse_samples(s.server().metrics_text()).at("tether_connections_opened_total"), "7");
}

TEST(Metrics, ResumesReplaysAndFailuresAreCounted) {
  MetricsServer s;
  const std::string offer = "Sec-WebSocket-Protocol: tether.resume.v1\r\n";
  uint8_t op = 0;
  std::string payload, session;
  {
    RawPeer a(s.port());
    ASSERT_TRUE(a.upgrade_response(offer).starts_with("HTTP/1.1 101"));
    a.write(frame(0x81, R"(H{"v":1,"session":"","last":0})"));
    ASSERT_TRUE(a.read_frame(op, payload));
    ASSERT_TRUE(payload.starts_with("W{")) << payload;
    const auto at = payload.find("\"session\":\"") + 11;
    session = payload.substr(at, 32);
    a.write(frame(0x81, "M1,0;hi"));  // echoed as the server's M1, which `a` never acknowledges
    ASSERT_TRUE(a.read_frame(op, payload));
    EXPECT_EQ(payload, "M1,1;hi");
  }  // the socket goes without a close frame: the session is kept for the window
  {
    RawPeer b(s.port());
    ASSERT_TRUE(b.upgrade_response(offer).starts_with("HTTP/1.1 101"));
    b.write(frame(0x81, R"(H{"v":1,"session":")" + session + R"(","last":0})"));
    ASSERT_TRUE(b.read_frame(op, payload));
    EXPECT_NE(payload.find("\"resumed\":true"), std::string::npos) << payload;
    ASSERT_TRUE(b.read_frame(op, payload));
    EXPECT_EQ(payload, "M1,1;hi");  // replayed
    close_and_drain(b);
  }
  {
    RawPeer c(s.port());
    ASSERT_TRUE(c.upgrade_response(offer).starts_with("HTTP/1.1 101"));
    c.write(frame(0x81, R"(H{"v":1,"session":"0123456789abcdef0123456789abcdef","last":2})"));
    ASSERT_TRUE(c.read_frame(op, payload));
    EXPECT_NE(payload.find("unknown session"), std::string::npos) << payload;
    close_and_drain(c);
  }
  const Scrape m = scrape(s.port());
  EXPECT_EQ(m.value("tether_resumes_total"), "1");
  EXPECT_EQ(m.value("tether_resume_replays_total"), "1");
  EXPECT_EQ(m.value("tether_resume_failures_total"), "1");
}

TEST(Metrics, SlowSubscriberDropsAndTheSendQueueGauge) {
  std::atomic<bool> subscribed{false};
  MetricsServer s(
      [](tether::ServerOptions& o) {
        o.send_buffer_limit = 64 * 1024;
        o.ping_interval = 0ms;  // no heartbeat: the reader is stalled on purpose
      },
      [&](tether::Server& server) {
        server.on_open([&server, &subscribed](tether::Connection& c) {
          server.subscribe(c, "t");
          subscribed = true;
        });
      });
  auto stalled = std::make_unique<RawPeer>(s.port());
  ASSERT_TRUE(stalled->upgrade());  // and never reads again
  for (int i = 0; i < 200 && !subscribed; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(subscribed);
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 400; ++i) s.server().publish("t", chunk, MessageType::binary);
  // Posted tasks run in order: once this one has run, every publish has.
  std::promise<void> done;
  s.server().for_each_connection([&](tether::Connection&) { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);

  const Scrape m = scrape(s.port());
  const uint64_t dropped = s.server().dropped_messages();
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(m.value("tether_dropped_messages_total{reason=\"slow_subscriber\"}"),
            std::to_string(dropped));
  // What the kernel would not take: at most the limit plus one frame (fan-out appends only
  // below the limit), and the scrape's own response may be in flight.
  const uint64_t queued = std::stoull(m.value("tether_send_queue_bytes"));
  EXPECT_GT(queued, 0u);
  EXPECT_LE(queued, 64u * 1024 + (64u * 1024 + 10) + m.bytes_received);

  stalled.reset();  // the subscriber goes: nothing is queued any more
  std::string gauge;
  for (int i = 0; i < 200 && gauge != "0"; ++i) {
    gauge = parse_samples(s.server().metrics_text())["tether_send_queue_bytes"];
    if (gauge != "0") std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(gauge, "0");
}

TEST(Metrics, LoopsAreSummed) {
  MetricsServer s([](tether::ServerOptions& o) { o.threads = 3; });
  for (int i = 0; i < 12; ++i) {
    RawPeer p(s.port());
    ASSERT_TRUE(p.upgrade());
    p.write(frame(0x82, "x"));
    uint8_t op = 0;
    std::string payload;
    ASSERT_TRUE(read_data_frame(p, op, payload));
    close_and_drain(p);
  }
  // Other loops count on their own threads: wait for the last of them.
  std::map<std::string, std::string> m;
  for (int i = 0; i < 200; ++i) {
    m = parse_samples(s.server().metrics_text());
    if (m["tether_connections_closed_total{cause=\"remote_close\",code=\"1000\"}"] == "12") break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(m["tether_connections_opened_total"], "12");
  EXPECT_EQ(m["tether_connections_closed_total{cause=\"remote_close\",code=\"1000\"}"], "12");
  EXPECT_EQ(m["tether_received_messages_total"], "12");
  EXPECT_EQ(m["tether_sent_messages_total"], "12");
}

TEST(Metrics, PathCanMoveOrBeTurnedOff) {
  {
    MetricsServer s([](tether::ServerOptions& o) { o.metrics_path = "/internal/stats"; });
    EXPECT_TRUE(scrape(s.port()).head.starts_with("HTTP/1.1 426"));
    const Scrape m = scrape(s.port(), "GET", "/internal/stats?x=1");
    EXPECT_TRUE(m.head.starts_with("HTTP/1.1 200")) << m.head;
    EXPECT_EQ(m.value("tether_connections_open"), "0");
    const Scrape head = scrape(s.port(), "HEAD", "/internal/stats");
    EXPECT_TRUE(head.head.starts_with("HTTP/1.1 200")) << head.head;
    EXPECT_TRUE(head.body.empty());
  }
  {
    MetricsServer s([](tether::ServerOptions& o) { o.metrics_path.clear(); });
    EXPECT_TRUE(scrape(s.port()).head.starts_with("HTTP/1.1 426"));
    EXPECT_NE(s.server().metrics_text().find("tether_connections_open 0"), std::string::npos);
  }
}

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(Metrics, SeparateMetricsPortServesOnlyMetricsAndHealth) {
  const uint16_t mport = free_port();
  MetricsServer s([&](tether::ServerOptions& o) { o.metrics_port = mport; });
  // The main port no longer serves them; the metrics port does, and nothing else.
  EXPECT_TRUE(scrape(s.port()).head.starts_with("HTTP/1.1 426"));
  RawPeer ws(s.port());
  ASSERT_TRUE(ws.upgrade());
  const Scrape m = scrape(mport);
  EXPECT_TRUE(m.head.starts_with("HTTP/1.1 200")) << m.head;
  EXPECT_EQ(m.value("tether_connections_open"), "1");
  EXPECT_TRUE(scrape(mport, "GET", "/healthz").head.starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(scrape(mport, "GET", "/tether.js").head.starts_with("HTTP/1.1 404"));
  RawPeer upgrade(mport);
  EXPECT_TRUE(upgrade.upgrade_response().starts_with("HTTP/1.1 404"));
  // Its own traffic is not counted, nor are its connections against the limits.
  const Scrape again = scrape(mport);
  EXPECT_EQ(again.value("tether_received_bytes_total"), m.value("tether_received_bytes_total"));
  EXPECT_EQ(again.value("tether_handshake_rejections_total{status=\"404\"}"), "<absent>");
  EXPECT_EQ(s.server().connection_count(), 1u);
}

TEST(Metrics, ConnectionStatsForLogs) {
  std::promise<tether::ConnectionStats> at_close;
  MetricsServer s({}, [&](tether::Server& server) {
    server.on_close(
        [&](tether::Connection& c, const tether::CloseInfo&) { at_close.set_value(c.stats()); });
  });
  RawPeer p(s.port());
  ASSERT_TRUE(p.upgrade());
  p.write(frame(0x81, "hello"));
  uint8_t op = 0;
  std::string payload;
  ASSERT_TRUE(read_data_frame(p, op, payload));
  std::this_thread::sleep_for(20ms);
  p.write(close_frame(1000));
  auto f = at_close.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const auto st = f.get();
  EXPECT_EQ(st.messages_received, 1u);
  EXPECT_EQ(st.messages_sent, 1u);
  EXPECT_EQ(st.bytes_received, p.bytes_sent());  // the close frame included: read before on_close
  EXPECT_EQ(st.bytes_sent, p.bytes_received());  // the close reply is not written yet
  EXPECT_GE(st.handshake_duration, std::chrono::nanoseconds::zero());
  EXPECT_LT(st.handshake_duration, st.age);
  EXPECT_GE(st.age, 20ms);
  EXPECT_LT(st.age, 5s);
}

}  // namespace
