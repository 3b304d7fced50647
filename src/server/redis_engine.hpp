// Several tether nodes as one server through Redis (ServerOptions::redis_url, docs/deploy.md):
// topic publishes fan out to every node over Redis pub/sub, and each publish is also kept in a
// per-topic Redis stream for the resume window.
//
// Lives on loop 0 (two redis::Links: commands, and a subscriber); other loops reach it with
// posts. A publish is delivered to local subscribers at once by the caller (local delivery never
// waits for Redis and never stops when Redis is down) and shared here; a message that comes back
// from Redis with our own node id is skipped, so every subscriber gets it exactly once.
//
// Wire format on channel "tether:p:<topic>": "<node id>\n<t|b>\n<stream id>\n<payload bytes>".
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "redis/link.hpp"
#include "tether/message.hpp"

namespace tether::detail {

struct ServerImpl;

class RedisEngine {
 public:
  RedisEngine(ServerImpl& server, loop::EventLoop& loop, redis::LinkConfig config,
              protocol::Random& rng);
  void start();

  // Loop 0 only. Shares a publish with the other nodes (the caller delivered it locally, to
  // resume sessions too unless `resume_waiting`: then they get it when it comes back with its
  // stream id, or at once if Redis cannot take it).
  void publish(std::string_view topic, std::string_view data, MessageType type,
               bool resume_waiting);

  bool up() const { return cmd_.up() && sub_.up(); }
  const std::string& node_id() const { return node_id_; }
  uint64_t publish_failures() const { return publish_failures_; }

  // Delivers a topic message to this node's subscribers (all loops): `stream_id` is its id in
  // the topic's Redis stream ("" when unknown); `resume_only`: only resume sessions (our own
  // publish coming back with its id, or one Redis could not take: plain subscribers had it).
  std::function<void(std::string_view topic, std::string_view data, MessageType type,
                     std::string_view stream_id, bool resume_only)>
      deliver;

 private:
  void on_message(std::string_view channel, std::string_view payload);
  void state_changed(bool link_up);

  ServerImpl& server_;
  redis::Link cmd_;
  redis::Link sub_;
  std::string node_id_;
  bool reported_up_ = false;
  bool told_unreachable_ = false;
  uint64_t publish_failures_ = 0;
  uint64_t failures_in_outage_ = 0;
};

}  // namespace tether::detail
