// tether::Server: a WebSocket server (RFC 6455) on N epoll loops.
//
//   tether::Server server({.port = 8080});
//   server.on_message([](tether::Connection& c, std::string_view data, tether::MessageType t) {
//     c.send(data, t);  // echo
//   });
//   server.listen();   // binds; server.port() is the real port
//   server.run();      // until stop() (thread-safe) or SIGINT/SIGTERM handling by the caller
//
// Callbacks for a connection always run on that connection's loop thread. A Connection&
// is valid until on_close returns; keep its id() to refer to it later.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "tether/close_info.hpp"
#include "tether/message.hpp"
#include "tether/metrics.hpp"
#include "tether/options.hpp"

namespace tether {

// A file compiled in from web/ (e.g. "/tether.js", "/chat/index.html"), or nullopt. The bytes
// live for the whole program.
std::optional<std::string_view> web_asset(std::string_view path);

// The server's view of one connection. Not virtual (no vtable pointer in each of a server's
// many connections): every Connection is the server's own.
class Connection {
 public:
  uint64_t id() const;
  std::string peer() const;       // "127.0.0.1:50312", "[::1]:50312"
  std::string_view path() const;  // request target of the upgrade
  std::string_view subprotocol() const;
  // Frames `data` as one message. Never blocks; see SendStatus.
  SendStatus send(std::string_view data, MessageType type = MessageType::text);
  // Starts the closing handshake (§7.1.2). code must be valid on the wire (§7.4); reason <= 123
  // bytes.
  void close(uint16_t code = close_code::normal, std::string_view reason = {});
  std::size_t buffered_amount() const;  // bytes queued, not yet written to the socket
  // The latest heartbeat round trip (ping sent -> its pong received), once one has completed
  // (kept in microseconds).
  std::optional<std::chrono::nanoseconds> rtt() const;
  // Bytes and messages in and out, handshake duration and age (inside on_close: the
  // connection's whole life), e.g. for a log line per close.
  ConnectionStats stats() const;
  void* user_data = nullptr;

 protected:
  Connection() = default;
  ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void on_open(std::function<void(Connection&)> fn);
  void on_message(std::function<void(Connection&, std::string_view, MessageType)> fn);
  void on_close(std::function<void(Connection&, const CloseInfo&)> fn);
  // Errors that are not tied to a connection's close (bad handshakes, accept failures).
  void on_error(std::function<void(std::string_view)> fn);

  // Serves `body` for GET/HEAD of exactly `path` (query ignored) on the server's port, ahead of
  // static files: small built-in pages such as the chat page. Call before listen(). The browser
  // client is always served at /tether.js.
  void add_page(std::string path, std::string content_type, std::string body);

  // Binds every loop's listener. Returns an error (e.g. address in use) instead of throwing.
  std::error_code listen();
  uint16_t port() const;
  // Runs the loops (loop 0 on the calling thread) until stop() has finished.
  void run();
  // Thread- and signal-handler-unsafe but thread-safe: graceful stop. Stops accepting, sends
  // close `code` to every client, waits up to shutdown_timeout for the handshakes, then drops.
  void stop(uint16_t code = close_code::going_away, std::string reason = "server shutting down");
  // Graceful stop before a restart: close 1012 to every client with a per-client suggested delay
  // spread over ServerOptions::restart_spread ("server restart; reconnect in 4321ms"), which
  // tether clients honour (with jitter), so they do not all reconnect in the same instant.
  void stop_for_restart();

  // Sends to every open connection on every loop (thread-safe; other loops get a copy). The frame
  // is encoded once per loop and the same bytes are queued on every connection.
  void broadcast(std::string_view data, MessageType type = MessageType::text);
  std::size_t connection_count() const;

  // Pub/sub. subscribe/unsubscribe run on the connection's loop thread (inside its callbacks);
  // subscriptions end with the connection.
  void subscribe(Connection& c, std::string_view topic);
  void unsubscribe(Connection& c, std::string_view topic);
  // Thread-safe: sends to every subscriber of `topic` on every loop, encoding the frame once per
  // loop. Slow subscribers are handled per ServerOptions::slow_subscriber.
  void publish(std::string_view topic, std::string_view data, MessageType type = MessageType::text);
  // Thread-safe: sends to the connection with this id, wherever it is (dropped if it is gone).
  void send_to(uint64_t id, std::string_view data, MessageType type = MessageType::text);
  // Thread-safe: runs `fn` for every open connection, on each connection's own loop thread
  // (so `fn` may send or close; it must be safe to call from several loop threads at once).
  void for_each_connection(std::function<void(Connection&)> fn);
  // Fan-out messages skipped because a subscriber was too slow (SlowSubscriber::drop).
  uint64_t dropped_messages() const;
  // Thread-safe: the Prometheus text exposition (format 0.0.4) of the server's counters, summed
  // over the loops: what GET ServerOptions::metrics_path answers (docs/cli.md#metrics lists
  // them). For applications that expose metrics their own way.
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tether
