// Per-thread server state: one event loop, its listener, its connections.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "limits/token_bucket.hpp"
#include "loop/event_loop.hpp"
#include "metrics/counters.hpp"
#include "protocol/random.hpp"
#include "resume/session_store.hpp"
#include "server/conn_table.hpp"
#include "server/server_impl.hpp"
#include "server/session_mirror.hpp"
#include "stream/ws_stream.hpp"

namespace tether::detail {

class ServerConn;

struct ConnPool;

struct LoopContext final : loop::IoHandler {
  explicit LoopContext(ServerImpl& server);
  ~LoopContext() override;

  void on_io(uint32_t events) override;  // listener readable: accept
  void schedule_flush(ServerConn* c);
  void retire(ServerConn* c);  // delete at the end of this iteration
  void begin_shutdown(uint16_t code, const std::string& reason);
  void maybe_finish_shutdown();
  void broadcast_local(std::string_view data, MessageType type);
  // Detached resume sessions are forgotten after the window: one loop timer for all of them.
  void schedule_session_expiry();
  ServerConn* find(uint64_t id);

  ServerImpl& server;
  loop::EventLoop loop;
  int listen_fd = -1;
  protocol::SystemRandom rng;
  std::unique_ptr<ConnPool> conn_pool;  // where ServerConn::create() makes connections
  protocol::NameTable names;    // request targets and subprotocols of this loop's connections
  ConnTable<ServerConn> conns;  // by connection id
  std::vector<ServerConn*> all_conns() const;
  // Pub/sub: topic -> subscribers on this loop.
  std::unordered_map<std::string, std::vector<ServerConn*>> topics;
  void subscribe(ServerConn* c, std::string_view topic);
  void unsubscribe(ServerConn* c, std::string_view topic);
  // Who a topic message is for: with Redis, a local publish reaches plain connections at once
  // and resume sessions when it comes back from Redis with its stream id (their replay position).
  enum class Audience : uint8_t { all, plain, resume };
  void publish_local(std::string_view topic, std::string_view data, MessageType type,
                     std::string_view stream_id = {}, Audience who = Audience::all);
  // Queues one pre-encoded frame (or, for resume sessions, the message) on `c`, applying the
  // slow-subscriber policy.
  void fan_out(ServerConn* c, std::span<const uint8_t> frame, std::string_view data,
               MessageType type);
  std::vector<uint8_t> fan_frame;  // reused encoding buffer
  // The same message compressed once for every subscriber that negotiated permessage-deflate
  // with a shareable compressor (Connection::shared_deflate_key): the key it was made for (-1:
  // none yet for this message) and whether compressing paid (else the plain frame goes).
  std::vector<uint8_t> fan_deflated;
  int fan_deflated_key = -1;
  bool fan_deflated_result = false;
  std::span<const uint8_t> frame_for(ServerConn* c, std::span<const uint8_t> plain,
                                     std::string_view data, MessageType type);
  std::vector<ServerConn*> fan_targets;  // reused snapshot of the receivers
  // This loop's /metrics counters (only this loop's thread writes them; scrapes read them).
  metrics::StreamCounters counters;
  // What every connection of this loop shares (not copied per connection): admitted, over a
  // limit (answered 503), on the metrics port.
  StreamConfig stream_config, stream_config_busy, stream_config_metrics;
  void configure_streams();  // again once listen() has made the TLS context
  std::vector<ServerConn*> flush_list;
  std::vector<ServerConn*> graveyard;
  bool after_io_scheduled = false;
  bool stopping = false;
  loop::Timer shutdown_timer;
  std::unique_ptr<resume::SessionStore> sessions;  // sessions live on the loop that made them
  // ---- sessions shared through Redis (session_glue.cpp; null without --redis)
  std::unique_ptr<SessionMirror> mirror;
  uint64_t next_session_tag = 1;
  // Sends one message into a resume session: stored in Redis first when mirrored, then numbered
  // and written (or kept in the window while the client is away).
  void session_send(resume::Session& s, MessageType type, std::string_view data,
                    std::string_view topic = {}, std::string_view stream_id = {});
  // A topic message for a resume subscriber: skipped if the session has it already (it moved
  // here and caught up), held while the session catches up on the topic.
  void session_topic_message(ServerConn* c, std::string_view topic, std::string_view stream_id,
                             std::string_view data, MessageType type);
  // A resume session subscribed to `topic`: catch up from its stream position (after a move).
  void session_subscribed(ServerConn* c, std::string_view topic);
  // Topic messages held while a session catches up: key = session id + '\n' + topic.
  std::unordered_map<std::string, std::vector<TopicEntry>> catching_up;
  loop::Timer session_timer;
  std::thread thread;
  // Accept pacing (ServerOptions::accept_rate; fd exhaustion): the listener leaves the epoll
  // interest set until this timer fires, and new connections wait in the kernel's backlog.
  limits::TokenBucket accept_budget;
  loop::Timer accept_timer;
  bool accept_paused = false;
  void pause_accepting(loop::TimePoint until);

 private:
  void after_io();
  // Admission (max_connections, max_connections_per_ip): false -> answer 503.
  bool admit(const std::string& ip);
};

}  // namespace tether::detail
