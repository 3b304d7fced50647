// One connection to Redis on an event loop: commands in, replies out, pub/sub messages, and
// reconnecting with backoff when the link drops. Non-blocking; our own socket on our own loop
// (docs/architecture.md), with hiredis's reply parser (redisReader) for RESP, which is what it
// does well. No hiredis type appears in this header.
//
//   redis::Link link(loop, {"127.0.0.1", 6379}, rng);
//   link.on_state = [](bool up) { ... };          // every transition, for health and metrics
//   link.start();
//   link.command({"SET", "k", "v"}, [](const redis::Reply* r) { if (!r) ... link dropped });
//   link.subscribe({"tether:p:*"}, on_message);   // a separate Link: a subscribed
//                                                 // connection can only subscribe
//
// Replies come back in command order (RESP). When the link drops, every waiting callback gets
// nullptr, in order, before on_state(false); commands given while down fail the same way at
// once (nothing is queued behind a dead link, so callers see the gap and can say so).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "liveness/backoff.hpp"
#include "loop/event_loop.hpp"
#include "protocol/random.hpp"

struct redisReader;  // hiredis

namespace tether::redis {

// A parsed reply (a view of hiredis's redisReply, valid during the callback only).
class Reply {
 public:
  explicit Reply(const void* r) : r_(r) {}
  bool is_error() const;
  bool is_nil() const;
  bool is_array() const;
  bool is_integer() const;
  long long integer() const;
  std::string_view str() const;  // string, status or error text
  std::size_t size() const;      // array length
  Reply at(std::size_t i) const;

 private:
  const void* r_;
};

struct LinkConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  // Reconnect pacing (full jitter, as the client's): quick after a blip, gentle on a Redis that
  // is restarting, never more than 5 s between tries so a node catches up soon after.
  liveness::BackoffConfig backoff{std::chrono::milliseconds(100), std::chrono::seconds(5), 0,
                                  std::chrono::seconds(10)};
  // A connect that has not completed in this time is abandoned and retried.
  loop::Duration connect_timeout = std::chrono::seconds(2);
  // Replies waiting past this bound make the link count as down (a hung Redis).
  std::size_t max_pending = 100000;
};

// "redis://host[:port][/db]" -> config. false with `error` set when malformed.
bool parse_redis_url(std::string_view url, LinkConfig& out, std::string& error);

class Link final : public loop::IoHandler {
 public:
  using Callback = std::function<void(const Reply*)>;  // nullptr: the link dropped first
  using Message = std::function<void(std::string_view channel, std::string_view payload)>;

  Link(loop::EventLoop& loop, LinkConfig config, protocol::Random& rng);
  ~Link() override;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void start();  // connects now, then keeps reconnecting until the destructor
  bool up() const { return state_ == State::up; }
  uint64_t reconnects() const { return reconnects_; }

  // Queues a command (argv, binary-safe). false (and cb(nullptr) already called) when down.
  bool command(std::span<const std::string_view> argv, Callback cb);
  bool command(std::initializer_list<std::string_view> argv, Callback cb) {
    return command(std::span<const std::string_view>(argv.begin(), argv.size()), std::move(cb));
  }
  // Makes this link a subscriber: PSUBSCRIBE `patterns` now and after every reconnect; each
  // message goes to `on_message`. A subscribed link takes no other commands.
  void psubscribe(std::vector<std::string> patterns, Message on_message);

  // Every transition up/down, and one on_state(false) when the first attempts fail (Redis was
  // not reachable to begin with).
  std::function<void(bool up)> on_state;
  const LinkConfig& config() const { return config_; }
  const std::string& last_error() const { return last_error_; }

 private:
  enum class State : uint8_t { down, connecting, up };
  void on_io(uint32_t events) override;
  void connect_now();
  void connected();
  void drop(std::string why);
  void flush();
  void read_some();
  void dispatch(void* reply);
  void append_command(std::span<const std::string_view> argv);
  void schedule_retry();
  uint64_t random_bits();

  loop::EventLoop& loop_;
  LinkConfig config_;
  protocol::Random& rng_;
  liveness::Backoff backoff_;
  loop::Timer timer_;  // connect timeout, then the retry delay
  int fd_ = -1;
  State state_ = State::down;
  bool want_write_ = false;
  bool started_ = false;
  redisReader* reader_ = nullptr;
  std::string out_;  // encoded commands not yet written
  std::size_t out_pos_ = 0;
  std::deque<Callback> pending_;
  std::size_t internal_replies_ = 0;  // SELECT / PSUBSCRIBE confirmations to swallow
  std::vector<std::string> patterns_;
  Message on_message_;
  uint64_t reconnects_ = 0;
  bool ever_up_ = false;
  bool told_unreachable_ = false;
  std::string last_error_;
};

}  // namespace tether::redis
