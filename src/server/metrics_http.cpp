#include "server/metrics_http.hpp"

#include <sys/epoll.h>

#include "loop/socket.hpp"
#include "metrics/exposition.hpp"
#include "server/loop_context.hpp"
#include "server/server_conn.hpp"
#include "server/server_impl.hpp"

#ifndef TETHER_VERSION
#define TETHER_VERSION "unknown"
#endif

namespace tether::detail {

std::string render_metrics(const ServerImpl& server) {
  metrics::Snapshot s;
  for (const auto& ctx : server.loops) s.add(ctx->counters);
  s.redis_up = server.redis_up.load(std::memory_order_relaxed);
  s.redis_reconnects = server.redis_reconnects.load(std::memory_order_relaxed);
  s.redis_publish_failures = server.redis_publish_failures.load(std::memory_order_relaxed);
  return metrics::render(s, TETHER_VERSION);
}

MetricsListener::MetricsListener(LoopContext& ctx) : ctx_(ctx) {
  resume_timer_.set_callback(
      [](loop::Timer&, void* self) {
        auto* l = static_cast<MetricsListener*>(self);
        if (l->fd_ >= 0) l->ctx_.loop.modify(l->fd_, EPOLLIN, l);
      },
      this);
}

MetricsListener::~MetricsListener() { close(); }

void MetricsListener::close() {
  ctx_.loop.timers().cancel(resume_timer_);
  if (fd_ < 0) return;
  ctx_.loop.remove(fd_);
  loop::close_fd(fd_);
  fd_ = -1;
}

std::error_code MetricsListener::listen(const std::string& host, uint16_t port) {
  loop::ListenOptions lo;
  lo.host = host;
  lo.port = port;
  lo.backlog = 64;
  std::error_code ec;
  fd_ = loop::listen_tcp(lo, ec);
  if (fd_ < 0) return ec;
  if (auto err = ctx_.loop.add(fd_, EPOLLIN, this)) {
    loop::close_fd(fd_);
    fd_ = -1;
    return err;
  }
  return {};
}

void MetricsListener::on_io(uint32_t) {
  if (ctx_.stopping) {  // a graceful stop closes listeners first; this one goes at its next event
    close();
    return;
  }
  for (int i = 0; i < 16 && fd_ >= 0; ++i) {
    loop::PeerAddress peer;
    std::error_code ec;
    const int fd = loop::accept_tcp(fd_, peer, ec);
    if (fd < 0) {
      // EMFILE and the like leave the listener readable: pause instead of spinning.
      if (ec != std::errc::operation_would_block &&
          ec != std::errc::resource_unavailable_try_again) {
        ctx_.loop.modify(fd_, 0, this);
        ctx_.loop.timers().schedule(resume_timer_,
                                    ctx_.loop.now() + std::chrono::milliseconds(100));
      }
      return;
    }
    auto* c = ServerConn::create(ctx_, ctx_.server.next_id.fetch_add(1), peer, false, true);
    if (c->attach(fd, false)) {
      ServerConn::destroy(c);
      continue;
    }
    ctx_.conns.insert(c);
  }
}

}  // namespace tether::detail
