// Options are plain structs. Every default says why it is that value.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/close_info.hpp"

namespace tether {

// Liveness settings shared by both roles (docs/liveness.md). A zero duration disables a timer.
struct LivenessOptions {
  // 25 s: below the 55-60 s idle cuts of common intermediaries (Heroku 55 s, nginx
  // proxy_read_timeout 60 s, AWS ALB 60 s) with room for one lost ping; also what Socket.IO uses.
  std::chrono::milliseconds ping_interval{25000};
  // 20 s: with the interval, a silent peer is declared dead after 45 s: a slow mobile link's
  // pong still arrives in time, while a vanished one is found long before TCP's ~2 h keepalive.
  std::chrono::milliseconds ping_timeout{20000};
  // 10 s: a real client finishes the upgrade in one round trip; this bounds half-open
  // (slowloris) handshakes.
  std::chrono::milliseconds handshake_timeout{10000};
  // Off: applications that want to drop connections without messages opt in (close 1001).
  std::chrono::milliseconds idle_timeout{0};
  // 5 s: after our close frame, wait this long for the peer's (§7.1.1), then drop TCP.
  std::chrono::milliseconds close_timeout{5000};
  // TCP_USER_TIMEOUT (RFC 5482): off (kernel default, ~15 min of retransmissions).
  std::chrono::milliseconds tcp_user_timeout{0};
  // SO_KEEPALIVE: off; the WebSocket heartbeat above finds dead peers far sooner.
  bool tcp_keepalive = false;
};

struct ServerOptions : LivenessOptions {
  std::string host = "127.0.0.1";  // loopback by default: exposing a port is an explicit choice
  uint16_t port = 8080;            // 0 picks a free port (read it back with Server::port())
  // Event loops (threads) sharing the port with SO_REUSEPORT. One loop per core is the model.
  unsigned threads = 1;
  // 16 MiB: room for real payloads (images, documents) yet bounded per connection (§10.4).
  std::size_t max_message = 16u << 20;
  // Same as max_message: a single frame may carry a whole message.
  std::size_t max_frame = 16u << 20;
  // Bytes queued for a slow reader before send() reports backpressure. 1 MiB keeps a stalled
  // client from costing more than a few pages while letting bursts through.
  std::size_t send_buffer_limit = 1u << 20;
  // Past this, send() drops the message instead of queueing it (bounded memory per connection).
  std::size_t send_buffer_max = 16u << 20;
  // Fan-out (publish, broadcast) to a subscriber whose queue is already past send_buffer_limit:
  // skip it and count the drop (live feeds: the next update supersedes this one), or close it
  // with 1013 "try again later" so it reconnects and catches up (resume replays what it missed).
  enum class SlowSubscriber : uint8_t { drop, close };
  SlowSubscriber slow_subscriber = SlowSubscriber::drop;
  // How long a graceful stop waits for clients to finish the closing handshake (§7.1.1) before
  // dropping them. A few seconds: CONTRACT.md promises a bounded stop.
  std::chrono::milliseconds shutdown_timeout{3000};
  // stop_for_restart() tells each client to come back after a delay drawn uniformly from
  // [0, restart_spread] (close 1012, reason "server restart; reconnect in N ms"): 10 s spreads
  // 10,000 clients to ~100 per 100 ms instead of all at once.
  std::chrono::milliseconds restart_spread{10000};
  // Session resume (subprotocol tether.resume.v1, docs/resume.md): how long a session whose
  // connection is gone is kept, and how long unacknowledged messages are kept for replay.
  // 2 min covers a network switch or a proxy restart; 0 turns resume off (plain clients are
  // served the same either way).
  std::chrono::milliseconds resume_window{120000};
  // Subprotocols offered, in preference order (§4.2.2: the server selects one or none).
  std::vector<std::string> subprotocols;
  // Origin check (§10.2): return false to answer 403. Empty: accept any origin.
  std::function<bool(std::string_view origin)> check_origin;
  // Serve files from this directory to plain GET/HEAD requests that are not upgrades (ETag,
  // Last-Modified, 304s; nothing outside it, symlinks included). Empty: off, such requests get
  // 426 (only /healthz is answered) since the port speaks WebSocket.
  std::string static_dir;
};

struct ClientOptions : LivenessOptions {
  std::string url;  // ws://host[:port]/path
  // More URLs, tried in rotation after `url` on each reconnect (e.g. several nodes).
  std::vector<std::string> fallback_urls;
  // Reconnect by itself after abnormal closes and 1001/1011/1012/1013 (CONTRACT: `tether connect`
  // reconnects by default). Not after the application's own close() nor 1000/1008.
  bool reconnect = true;
  // 500 ms floor: quick enough that a blip goes unnoticed, slow enough not to hammer a server
  // that is restarting. Delays are min + uniform[0, min(max, min*2^n) - min] (full jitter).
  std::chrono::milliseconds backoff_min{500};
  // 30 s cap: a client never waits long after the server is back; still random at the cap.
  std::chrono::milliseconds backoff_max{30000};
  unsigned max_attempts = 0;  // 0: forever
  // A connection that stayed open this long resets the attempt counter (not a flapping one).
  std::chrono::milliseconds backoff_reset_after{10000};
  // Decides whether to reconnect after a close; nullptr: the default policy above.
  std::function<bool(const CloseInfo&)> should_reconnect;
  std::vector<std::string> subprotocols;
  std::string origin;  // empty: no Origin header (non-browser clients need none)
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  // Negotiate tether.resume.v1 (docs/resume.md): every message is numbered and kept until the
  // server acknowledges it, and a reconnect resumes the session: nothing lost, nothing twice.
  bool resume = false;
  std::size_t max_message = 16u << 20;  // same bound as the server's default
  std::size_t max_frame = 16u << 20;
  std::size_t send_buffer_limit = 1u << 20;  // see ServerOptions::send_buffer_limit
  std::size_t send_buffer_max = 16u << 20;
  // Messages sent before the connection is open wait here, bounded by count and bytes
  // (CONTRACT: stdin lines are "queued while not connected").
  std::size_t offline_queue_max_messages = 1024;
  std::size_t offline_queue_max_bytes = 16u << 20;
  // When the offline queue is full: refuse the new message (send() returns dropped), or drop
  // the oldest queued one to make room (latest state wins, e.g. dashboards).
  enum class QueueOverflow : uint8_t { reject, drop_oldest };
  QueueOverflow offline_queue_overflow = QueueOverflow::reject;
};

}  // namespace tether
