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
  // SO_SNDBUF in bytes for each connection's socket; 0: the kernel's default and autotuning
  // (leave it so unless kernel memory per connection must be capped; Linux doubles the value).
  int socket_send_buffer = 0;
  // SO_RCVBUF in bytes, likewise (0: default and autotuning; capped by net.core.rmem_max).
  int socket_receive_buffer = 0;
};

// permessage-deflate (RFC 7692). Field names follow the RFC's parameters; what they mean depends
// on the role (see each field). Off by default, as in ws and uWebSockets: compression costs CPU and
// zlib memory, and only pays for text-heavy traffic (JSON), so it is an explicit choice.
struct DeflateOptions {
  bool enabled = false;
  // Server: always ask to reset our own compressor after each message (the response carries
  //   server_no_context_takeover); the compressor is then one per event loop, shared, so a
  //   connection holds no zlib state between messages.
  // Client: offer it (the server may accept; the client then inflates each message fresh).
  // Default on: memory stays bounded per connection (a kept 32 KiB window + zlib state is
  // ~300 KiB per connection and direction); turn off for a better ratio on small messages.
  bool server_no_context_takeover = true;
  // Server: ask clients to reset theirs (client_no_context_takeover in the response), so our
  //   inflater is shared per loop too. Client: reset our own compressor after each message.
  bool client_no_context_takeover = true;
  // 9..15. Server: the largest window we use for sending (sent when < 15); an offer that asks for
  // a smaller one is honoured down to 9 (8 is declined: zlib cannot compress with 8).
  // Client: offered as server_max_window_bits when < 15.
  int server_max_window_bits = 15;
  // 9..15. Server: the window we ask the client to use when it offered client_max_window_bits.
  // Client: offered as client_max_window_bits=N (N < 15), or bare when 15 (we accept any).
  int client_max_window_bits = 15;
  // Messages shorter than this go out uncompressed (RSV1 clear): below ~64 bytes deflate's
  // framing overhead eats the gain and the CPU is wasted.
  std::size_t threshold = 64;
  int level = 6;  // zlib level 1..9: 6 is zlib's own default trade-off
};

// TLS (OpenSSL 3). Server: both files set turns TLS on (listening wss://).
struct ServerTlsOptions {
  std::string cert_file;  // PEM, leaf first then the chain
  std::string key_file;   // PEM private key
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
  // Prometheus metrics (docs/cli.md#metrics) for GET/HEAD of this path on the server's port.
  // "/metrics" is what Prometheus scrapes by default; empty: not served (Server::metrics_text()
  // still renders them for the application to expose its own way).
  std::string metrics_path = "/metrics";
  // Non-zero: serve metrics_path (or "/metrics" if empty) and /healthz on this port instead, a
  // plain HTTP listener on loop 0 that refuses upgrades, so the metrics need not be exposed
  // where the clients connect. 0: on the main port.
  uint16_t metrics_port = 0;
  DeflateOptions deflate;
  ServerTlsOptions tls;
  // Several nodes as one server (docs/deploy.md): "redis://host[:port][/db]". Topic publishes
  // reach subscribers on every node; each is kept in a Redis stream for resume_window. Empty:
  // this node alone. When Redis is unreachable the node keeps serving its own connections,
  // reports it (on_error, /healthz, /metrics) and reconnects with backoff.
  std::string redis_url;

  // ---- Limits against hostile or broken clients (docs/security.md: each one's threat and test).
  // Connections (handshakes in progress included) across all loops. Past it, new ones are
  // answered 503 with Retry-After. 50,000: what one core serves comfortably (~1.4 KiB per idle
  // connection); raise it together with the fd limit (ulimit -n). 0: no limit.
  std::size_t max_connections = 50000;
  // Per client IP address (503 past it): one host cannot take the whole server. 256 leaves room
  // for an office or carrier-grade NAT behind one address. 0: no limit.
  std::size_t max_connections_per_ip = 256;
  // Addresses the per-IP limit does not apply to: a reverse proxy on the same machine (nginx in
  // front of tether) brings every user from 127.0.0.1. Put your proxies' addresses here.
  std::vector<std::string> per_ip_exempt{"127.0.0.1", "::1"};
  // Bytes of the opening handshake's HTTP head: 431 past it. 16 KiB: browsers send 1-2 KiB
  // (more with cookies); bounds what a half-open handshake can make us hold.
  std::size_t max_handshake_size = 16384;
  // Origin allow-list (§10.2, CSWSH): when non-empty, a handshake whose Origin is not one of
  // these (exact, case-insensitive, e.g. "https://chat.example.com") is answered 403.
  // Requests without Origin (non-browser clients) pass. Applies together with check_origin.
  std::vector<std::string> allowed_origins;
  // send() to a connection whose queue is past send_buffer_max: close it with 1008 (the peer
  // learns it fell behind and, with resume, catches up after reconnecting), or drop the
  // message (send() returns dropped). Close by default: silent loss is the worse surprise.
  enum class SendOverflow : uint8_t { close, drop };
  SendOverflow send_overflow = SendOverflow::close;
  // Ping and pong frames a client may send per second (a burst of as many is allowed): past
  // it, close 1008. Each ping costs us a pong; real clients send one per ping interval.
  unsigned max_control_frames_per_second = 50;
  // New connections accepted per second per loop (bursts of as many): a connect flood waits in
  // the kernel's backlog instead of starving established connections of the loop.
  // 2,000/s brings 10,000 clients back within 5 s. 0: no limit (still 64 per wake-up).
  unsigned accept_rate = 2000;
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
  DeflateOptions deflate;
  // wss:// : the server's certificate is verified against the system's trust store (or ca_file)
  // and its name checked against the URL's host. Verification is on by default and turning it
  // off is for tests only.
  std::string tls_ca_file;  // PEM bundle of trusted CAs; empty: the system's default paths
  bool tls_verify = true;
};

}  // namespace tether
