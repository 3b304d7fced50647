#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/handshake.hpp"
#include "resume/config.hpp"
#include "tether/server.hpp"
#include "tls/tls.hpp"

namespace tether::detail {

struct LoopContext;
class RedisEngine;
class MetricsListener;

struct ServerImpl {
  explicit ServerImpl(ServerOptions o);
  ~ServerImpl();

  ServerOptions opts;
  protocol::ServerHandshakeConfig handshake;
  bool resume = false;  // tether.resume.v1 offered (resume_window > 0)
  struct Page {
    std::string content_type, body;
  };
  std::unordered_map<std::string, Page> pages;  // add_page(); read-only once running
  resume::Config resume_config;
  std::function<void(Connection&)> on_open;
  std::function<void(Connection&, std::string_view, MessageType)> on_message;
  std::function<void(Connection&, const CloseInfo&)> on_close;
  std::function<void(std::string_view)> on_error;

  std::vector<std::unique_ptr<LoopContext>> loops;
  // ServerOptions::metrics_port: on loop 0; declared after `loops`, so destroyed before them.
  std::unique_ptr<MetricsListener> metrics_listener;
  std::atomic<uint64_t> next_id{1};
  // Admitted connections (handshakes in progress included), and per client IP when
  // max_connections_per_ip is set (accepts are not a hot path: a mutex is fine).
  std::atomic<std::size_t> connection_count{0};
  std::mutex ip_mutex;
  std::unordered_map<std::string, std::size_t> ip_counts;
  std::atomic<uint64_t> rejected_busy{0};  // answered 503
  void release(const std::string& ip) {
    connection_count.fetch_sub(1, std::memory_order_relaxed);
    if (opts.max_connections_per_ip == 0) return;
    std::lock_guard lock(ip_mutex);
    auto it = ip_counts.find(ip);
    if (it != ip_counts.end() && --it->second == 0) ip_counts.erase(it);
  }
  // Handshake policy for connections over a limit: every upgrade is answered 503.
  protocol::ServerHandshakeConfig handshake_busy;
  std::shared_ptr<tls::Context> tls;  // set by listen() when opts.tls names a certificate
  // Redis (opts.redis_url): the engine lives on loop 0; -1 = not configured, 0 down, 1 up.
  std::unique_ptr<RedisEngine> redis;
  std::atomic<int> redis_up{-1};
  std::atomic<uint64_t> redis_reconnects{0};
  std::atomic<uint64_t> redis_publish_failures{0};
  std::atomic<bool> stop_requested{false};
  uint16_t port = 0;
  bool listening = false;

  // Delivers a topic message to this node's subscribers on every loop (thread-safe).
  void deliver_everywhere(std::string_view topic, std::string_view data, MessageType type,
                          std::string_view stream_id = {}, int audience = 0);
  void error(std::string_view what) {
    if (on_error) on_error(what);
  }
};

}  // namespace tether::detail
