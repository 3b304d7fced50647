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
#include "protocol/random.hpp"
#include "resume/session_store.hpp"
#include "server/server_impl.hpp"

namespace tether::detail {

class ServerConn;

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
  std::unordered_map<uint64_t, ServerConn*> conns;  // by connection id
  std::vector<ServerConn*> all_conns() const;
  // Pub/sub: topic -> subscribers on this loop.
  std::unordered_map<std::string, std::vector<ServerConn*>> topics;
  void subscribe(ServerConn* c, std::string_view topic);
  void unsubscribe(ServerConn* c, std::string_view topic);
  void publish_local(std::string_view topic, std::string_view data, MessageType type);
  // Queues one pre-encoded frame (or, for resume sessions, the message) on `c`, applying the
  // slow-subscriber policy.
  void fan_out(ServerConn* c, std::span<const uint8_t> frame, std::string_view data,
               MessageType type);
  std::vector<uint8_t> fan_frame;        // reused encoding buffer
  std::vector<ServerConn*> fan_targets;  // reused snapshot of the receivers
  std::atomic<uint64_t> dropped{0};
  std::vector<ServerConn*> flush_list;
  std::vector<ServerConn*> graveyard;
  bool after_io_scheduled = false;
  bool stopping = false;
  loop::Timer shutdown_timer;
  std::unique_ptr<resume::SessionStore> sessions;  // sessions live on the loop that made them
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
