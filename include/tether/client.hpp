// tether::Client: a WebSocket client connection (RFC 6455) on an event loop.
//
//   tether::Client client({.url = "ws://127.0.0.1:8080/"});
//   client.on_open([&] { client.send("hello"); });
//   client.on_message([&](std::string_view m, tether::MessageType) { client.close(); });
//   client.on_close([](const tether::CloseInfo& c) { /* c.code, c.cause */ });
//   client.connect();
//   client.run();  // returns once the connection has ended and no reconnect follows
//
// With a shared tether::Loop, many clients run on one thread (see loop.hpp); a Client must be
// destroyed before the Loop it runs on, and after that Loop has stopped running.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "tether/close_info.hpp"
#include "tether/loop.hpp"
#include "tether/message.hpp"
#include "tether/metrics.hpp"
#include "tether/options.hpp"

namespace tether {

class Client {
 public:
  enum class State { idle, connecting, open, closing, reconnecting, closed };

  explicit Client(ClientOptions options);     // owns its loop; drive it with run()
  Client(Loop& loop, ClientOptions options);  // shares `loop`
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void on_open(std::function<void()> fn);
  void on_message(std::function<void(std::string_view, MessageType)> fn);
  void on_close(std::function<void(const CloseInfo&)> fn);
  void on_error(std::function<void(std::string_view)> fn);
  // After a close that will be followed by a reconnect: the attempt number of the next
  // connection (the first connection is attempt 1) and the delay before it.
  void on_reconnecting(std::function<void(unsigned attempt, std::chrono::milliseconds delay)> fn);
  // With ClientOptions::resume: the session continued after a reconnect (`replayed`: our
  // messages sent again), or it could not and a fresh one began (`reason`; never a silent loss).
  void on_resumed(std::function<void(uint64_t replayed)> fn);
  void on_resume_failed(std::function<void(std::string_view reason)> fn);
  // Each pong that answers one of our heartbeat pings: the round-trip time.
  void on_rtt(std::function<void(std::chrono::nanoseconds)> fn);

  // Starts connecting (thread-safe; it runs from the loop's queue). Errors arrive as on_close
  // with cause connect_failed etc. After the client has ended (state closed), connect() starts
  // over.
  void connect();
  // Thread-safe. Before the connection is open the message waits in a bounded queue.
  SendStatus send(std::string_view data, MessageType type = MessageType::text);
  // Thread-safe. Queued sends go out first, then the close frame.
  void close(uint16_t code = close_code::normal, std::string_view reason = {});
  // Thread-safe. Sends a ping now; its pong arrives as on_rtt. Ignored when not open.
  void ping();
  // Runs the owned loop until the connection has ended (not for a shared loop).
  void run();

  State state() const;
  std::size_t buffered_amount() const;
  std::optional<std::chrono::nanoseconds> rtt() const;  // latest heartbeat round trip
  // The attempt number of the current (or latest) connection: 1, then 2, 3... after reconnects
  // (back to 1 once a connection has stayed up for backoff_reset_after).
  unsigned attempt() const;
  const std::string& url() const;  // the URL of the current (or latest) connection
  // Messages not yet delivered: queued while offline, or (with resume) not yet acknowledged.
  // Read it from the loop's thread, or after run() has returned.
  std::size_t pending_messages() const;
  // Thread-safe: this client's counters across all its connections (see ClientMetrics).
  ClientMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tether
