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

namespace tether {

struct ServerOptions {
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
  // How long a graceful stop waits for clients to finish the closing handshake (§7.1.1) before
  // dropping them. A few seconds: CONTRACT.md promises a bounded stop.
  std::chrono::milliseconds shutdown_timeout{3000};
  // Subprotocols offered, in preference order (§4.2.2: the server selects one or none).
  std::vector<std::string> subprotocols;
  // Origin check (§10.2): return false to answer 403. Empty: accept any origin.
  std::function<bool(std::string_view origin)> check_origin;
};

struct ClientOptions {
  std::string url;  // ws://host[:port]/path
  std::vector<std::string> subprotocols;
  std::string origin;  // empty: no Origin header (non-browser clients need none)
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::size_t max_message = 16u << 20;  // same bound as the server's default
  std::size_t max_frame = 16u << 20;
  std::size_t send_buffer_limit = 1u << 20;  // see ServerOptions::send_buffer_limit
  std::size_t send_buffer_max = 16u << 20;
  // Messages sent before the connection is open wait here, bounded by count and bytes
  // (CONTRACT: stdin lines are "queued while not connected").
  std::size_t offline_queue_max_messages = 1024;
  std::size_t offline_queue_max_bytes = 16u << 20;
};

}  // namespace tether
