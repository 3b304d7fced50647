// Serving /metrics: the page rendered from every loop's counters, and the optional separate
// plain HTTP listener (ServerOptions::metrics_port) on loop 0.
#pragma once
#include <cstdint>
#include <string>
#include <system_error>

#include "loop/event_loop.hpp"

namespace tether::detail {

struct LoopContext;
struct ServerImpl;

// The Prometheus text page: every loop's counters summed (relaxed reads of counters each loop
// writes alone: safe from any thread), plus the Redis link state.
std::string render_metrics(const ServerImpl& server);

// ServerOptions::metrics_port: accepts on loop 0 and hands each socket to a metrics-only
// ServerConn (plain HTTP: /metrics and /healthz; upgrades get 404). Not subject to the
// connection limits or accept pacing: it is meant for a scraper on a private address.
class MetricsListener final : public loop::IoHandler {
 public:
  explicit MetricsListener(LoopContext& ctx);
  ~MetricsListener() override;
  std::error_code listen(const std::string& host, uint16_t port);
  void on_io(uint32_t events) override;

 private:
  void close();
  LoopContext& ctx_;
  int fd_ = -1;
  loop::Timer resume_timer_;  // accept() failed (descriptors exhausted): retry after a pause
};

}  // namespace tether::detail
