// Counters the application can read: per connection (Connection::stats(), what `tether serve`
// logs on close) and per client (Client::metrics(), the client's side of the server's /metrics).
//
//   server.on_close([](tether::Connection& c, const tether::CloseInfo& info) {
//     auto s = c.stats();  // s.age: how long the connection lived; s.bytes_received ...
//   });
//   tether::ClientMetrics m = client.metrics();  // from any thread
//   uint64_t timeouts = m.closes(tether::Cause::heartbeat_timeout);
//
// The server's totals are Server::metrics_text() (Prometheus text format, docs/cli.md#metrics).
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "tether/close_info.hpp"

namespace tether {

// One connection's traffic and timing. Bytes are what crossed the socket (HTTP handshake,
// frame headers and TLS records included); messages are WebSocket data messages (text or
// binary, control frames excluded). Durations come from the event loop's clock.
struct ConnectionStats {
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t messages_received = 0;
  uint64_t messages_sent = 0;
  // From the TCP accept (server) or connect (client) to the completed upgrade; zero until then.
  std::chrono::nanoseconds handshake_duration{0};
  // From the TCP accept/connect to now (inside on_close: to the close).
  std::chrono::nanoseconds age{0};
};

// One client across all its connections and reconnects, since it was made. A snapshot: the
// fields are read one by one (each is exact, their sum may be a moment apart).
struct ClientMetrics {
  uint64_t connections_opened = 0;  // upgrades completed (each reconnect that opened counts)
  uint64_t reconnects = 0;          // reconnect attempts scheduled (on_reconnecting)
  // Every connection or attempt that ended, by Cause (index static_cast<size_t>(cause)):
  // connect_failed / handshake_failed attempts included.
  std::array<uint64_t, cause_count> closes_by_cause{};
  uint64_t closes(Cause c) const { return closes_by_cause[static_cast<std::size_t>(c)]; }
  uint64_t heartbeat_timeouts = 0;  // = closes(Cause::heartbeat_timeout)
  uint64_t messages_received = 0;   // WebSocket data messages (resume protocol frames included)
  uint64_t messages_sent = 0;
  uint64_t bytes_received = 0;  // socket bytes (handshake, frame headers, TLS included)
  uint64_t bytes_sent = 0;
  // Messages refused by send(): the connection's send buffer was past send_buffer_max, or the
  // offline queue was full (a drop_oldest eviction counts too).
  uint64_t dropped_send_buffer_full = 0;
  uint64_t dropped_offline_queue_full = 0;
  uint64_t resumes = 0;          // sessions resumed after a reconnect (on_resumed)
  uint64_t resume_replays = 0;   // our messages sent again after those resumes
  uint64_t resume_failures = 0;  // on_resume_failed
  uint64_t rtt_samples = 0;      // heartbeat round trips measured
  std::chrono::nanoseconds rtt_sum{0};
  std::optional<std::chrono::nanoseconds> last_rtt;
};

}  // namespace tether
