// Per-thread server state: one event loop, its listener, its connections.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

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
  void retire(ServerConn* c);            // delete at the end of this iteration
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
  std::unordered_set<ServerConn*> conns;
  std::vector<ServerConn*> flush_list;
  std::vector<ServerConn*> graveyard;
  bool after_io_scheduled = false;
  bool stopping = false;
  loop::Timer shutdown_timer;
  std::unique_ptr<resume::SessionStore> sessions;  // sessions live on the loop that made them
  loop::Timer session_timer;
  std::thread thread;

 private:
  void after_io();
};

}  // namespace tether::detail
