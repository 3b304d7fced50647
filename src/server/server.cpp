#include "tether/server.hpp"

#include <sys/epoll.h>

#include <algorithm>

#include "loop/socket.hpp"
#include "resume/frame.hpp"
#include "server/loop_context.hpp"
#include "server/metrics_http.hpp"
#include "server/redis_engine.hpp"
#include "server/server_conn.hpp"
#include "server/server_impl.hpp"
#include "server/web_assets.hpp"

namespace tether {

namespace detail {
thread_local LoopContext* current_loop = nullptr;

ServerImpl::ServerImpl(ServerOptions o) : opts(std::move(o)) {
  // The browser client and the pages under web/ are served on every server (CONTRACT.md).
  for (std::size_t i = 0; i < web::asset_count; ++i)
    pages[std::string(web::assets[i].path)] = {std::string(web::assets[i].content_type),
                                               std::string(web::assets[i].body)};
  handshake.subprotocols = opts.subprotocols;
  handshake.check_origin = opts.check_origin;
  if (!opts.allowed_origins.empty()) {
    // §10.2: browsers always send Origin; a page from another site must not reach our users'
    // sessions (cross-site WebSocket hijacking). Clients without Origin are not browsers.
    handshake.check_origin = [list = opts.allowed_origins,
                              user = opts.check_origin](std::string_view origin) {
      if (!origin.empty() && std::none_of(list.begin(), list.end(), [&](const std::string& o) {
            return protocol::iequals(o, origin);
          }))
        return false;
      return !user || user(origin);
    };
  }
  handshake_busy.reject_status = 503;
  handshake_busy.reject_headers = "Retry-After: 5\r\n";  // seconds: a paced retry, not a storm
  if (opts.resume_window > std::chrono::milliseconds::zero()) {
    resume = true;
    // After the application's own subprotocols: a client offering both gets the application's.
    handshake.subprotocols.push_back(std::string(resume::subprotocol));
    resume_config.window = opts.resume_window;
  }
}
ServerImpl::~ServerImpl() = default;

void ServerImpl::deliver_everywhere(std::string_view topic, std::string_view data, MessageType type,
                                    std::string_view stream_id, int audience) {
  const auto who = static_cast<LoopContext::Audience>(audience);
  for (auto& ctx : loops) {
    if (ctx.get() == current_loop) {
      ctx->publish_local(topic, data, type, stream_id, who);
    } else {
      auto* c = ctx.get();
      c->loop.post([c, t = std::string(topic), copy = std::string(data), type,
                    id = std::string(stream_id),
                    who] { c->publish_local(t, copy, type, id, who); });
    }
  }
}
}  // namespace detail

std::optional<std::string_view> web_asset(std::string_view path) {
  for (std::size_t i = 0; i < web::asset_count; ++i)
    if (web::assets[i].path == path) return web::assets[i].body;
  return std::nullopt;
}

struct Server::Impl : detail::ServerImpl {
  using ServerImpl::ServerImpl;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  unsigned n = impl_->opts.threads == 0 ? 1 : impl_->opts.threads;
  for (unsigned i = 0; i < n; ++i)
    impl_->loops.push_back(std::make_unique<detail::LoopContext>(*impl_));
}

Server::~Server() {
  for (auto& l : impl_->loops)
    if (l->thread.joinable()) {
      l->loop.stop();
      l->thread.join();
    }
}

void Server::add_page(std::string path, std::string content_type, std::string body) {
  impl_->pages[std::move(path)] = {std::move(content_type), std::move(body)};
}

void Server::on_open(std::function<void(Connection&)> fn) { impl_->on_open = std::move(fn); }
void Server::on_message(std::function<void(Connection&, std::string_view, MessageType)> fn) {
  impl_->on_message = std::move(fn);
}
void Server::on_close(std::function<void(Connection&, const CloseInfo&)> fn) {
  impl_->on_close = std::move(fn);
}
void Server::on_error(std::function<void(std::string_view)> fn) { impl_->on_error = std::move(fn); }

std::error_code Server::listen() {
  if (!impl_->opts.tls.cert_file.empty() || !impl_->opts.tls.key_file.empty()) {
    std::string err;
    impl_->tls = tls::Context::server(impl_->opts.tls.cert_file, impl_->opts.tls.key_file, err);
    if (!impl_->tls) {
      impl_->error("TLS: " + err);
      return std::make_error_code(std::errc::invalid_argument);
    }
  }
  loop::ListenOptions lo;
  lo.host = impl_->opts.host;
  lo.port = impl_->opts.port;
  lo.reuse_port = impl_->loops.size() > 1;
  for (auto& ctx : impl_->loops) {
    ctx->configure_streams();
    std::error_code ec;
    int fd = loop::listen_tcp(lo, ec);
    if (fd < 0) return ec;
    // With port 0 the first listener picks the port; the others join it (SO_REUSEPORT).
    if (lo.port == 0) lo.port = loop::local_port(fd);
    ctx->listen_fd = fd;
    if (auto err = ctx->loop.add(fd, EPOLLIN, ctx.get())) return err;
  }
  impl_->port = lo.port;
  if (impl_->opts.metrics_port != 0) {
    auto listener = std::make_unique<detail::MetricsListener>(*impl_->loops[0]);
    if (auto ec = listener->listen(impl_->opts.host, impl_->opts.metrics_port)) {
      impl_->error("metrics port " + std::to_string(impl_->opts.metrics_port) + ": " +
                   ec.message());
      return ec;
    }
    impl_->metrics_listener = std::move(listener);
  }
  impl_->listening = true;
  if (!impl_->opts.redis_url.empty()) {
    redis::LinkConfig rc;
    std::string err;
    if (!redis::parse_redis_url(impl_->opts.redis_url, rc, err)) {
      impl_->error("redis: " + err);
      return std::make_error_code(std::errc::invalid_argument);
    }
    auto& loop0 = *impl_->loops[0];
    impl_->redis = std::make_unique<detail::RedisEngine>(*impl_, loop0.loop, rc, loop0.rng);
    impl_->redis_up.store(0, std::memory_order_relaxed);
    impl_->redis->deliver = [impl = impl_.get()](std::string_view topic, std::string_view data,
                                                 MessageType type, std::string_view id,
                                                 bool resume_only) {
      impl->deliver_everywhere(topic, data, type, id,
                               static_cast<int>(resume_only ? detail::LoopContext::Audience::resume
                                                            : detail::LoopContext::Audience::all));
    };
    auto* engine = impl_->redis.get();
    loop0.loop.post([engine] { engine->start(); });
    // Resume sessions are kept in Redis too, by each loop on its own link (session_mirror.hpp).
    for (auto& ctx : impl_->loops) {
      if (!ctx->sessions) continue;
      ctx->mirror = std::make_unique<detail::SessionMirror>(*ctx, rc, engine->node_id());
      auto* m = ctx->mirror.get();
      ctx->loop.post([m] { m->start(); });
    }
  }
  return {};
}

uint16_t Server::port() const { return impl_->port; }

void Server::run() {
  auto body = [](detail::LoopContext* ctx) {
    detail::current_loop = ctx;
    ctx->loop.run();
    detail::current_loop = nullptr;
  };
  for (std::size_t i = 1; i < impl_->loops.size(); ++i)
    impl_->loops[i]->thread = std::thread(body, impl_->loops[i].get());
  body(impl_->loops[0].get());
  for (std::size_t i = 1; i < impl_->loops.size(); ++i)
    if (impl_->loops[i]->thread.joinable()) impl_->loops[i]->thread.join();
}

void Server::stop(uint16_t code, std::string reason) {
  if (impl_->stop_requested.exchange(true)) return;
  for (auto& ctx : impl_->loops) {
    auto* c = ctx.get();
    c->loop.post([c, code, reason] { c->begin_shutdown(code, reason); });
  }
}

void Server::broadcast(std::string_view data, MessageType type) {
  for (auto& ctx : impl_->loops) {
    if (ctx.get() == detail::current_loop) {
      ctx->broadcast_local(data, type);
    } else {
      auto* c = ctx.get();
      c->loop.post([c, copy = std::string(data), type] { c->broadcast_local(copy, type); });
    }
  }
}

void Server::subscribe(Connection& c, std::string_view topic) {
  auto& sc = static_cast<detail::ServerConn&>(c);
  sc.context().subscribe(&sc, topic);
}

void Server::unsubscribe(Connection& c, std::string_view topic) {
  auto& sc = static_cast<detail::ServerConn&>(c);
  sc.context().unsubscribe(&sc, topic);
}

void Server::publish(std::string_view topic, std::string_view data, MessageType type) {
  // This node's subscribers at once, whatever Redis is doing; then the other nodes. With Redis
  // up, resume sessions wait for the message to come back with its stream id (their position
  // for resuming on another node); the engine delivers it to them then, or at once if Redis
  // cannot take it.
  auto* engine = impl_->redis.get();
  const bool via_redis = engine && impl_->redis_up.load(std::memory_order_relaxed) == 1;
  impl_->deliver_everywhere(topic, data, type, {},
                            static_cast<int>(via_redis ? detail::LoopContext::Audience::plain
                                                       : detail::LoopContext::Audience::all));
  if (engine) {
    auto* loop0 = impl_->loops[0].get();
    if (loop0 == detail::current_loop)
      engine->publish(topic, data, type, via_redis);
    else
      loop0->loop.post([engine, t = std::string(topic), copy = std::string(data), type, via_redis] {
        engine->publish(t, copy, type, via_redis);
      });
  }
}

void Server::send_to(uint64_t id, std::string_view data, MessageType type) {
  for (auto& ctx : impl_->loops) {
    auto* c = ctx.get();
    if (c == detail::current_loop) {
      if (auto* conn = c->find(id)) conn->send(data, type);
    } else {
      c->loop.post([c, id, copy = std::string(data), type] {
        if (auto* conn = c->find(id)) conn->send(copy, type);
      });
    }
  }
}

void Server::for_each_connection(std::function<void(Connection&)> fn) {
  auto shared = std::make_shared<std::function<void(Connection&)>>(std::move(fn));
  for (auto& ctx : impl_->loops) {
    auto* c = ctx.get();
    auto run = [c, shared] {
      for (auto* conn : c->all_conns())
        if (conn->is_open() && !conn->retired) (*shared)(*conn);
    };
    if (c == detail::current_loop)
      run();
    else
      c->loop.post(run);
  }
}

uint64_t Server::dropped_messages() const {
  uint64_t n = 0;
  for (auto& ctx : impl_->loops)
    n +=
        ctx->counters.dropped[static_cast<std::size_t>(metrics::DropReason::slow_subscriber)].get();
  return n;
}

std::string Server::metrics_text() const { return detail::render_metrics(*impl_); }

void Server::stop_for_restart() { stop(close_code::service_restart, "server restart"); }

std::size_t Server::connection_count() const {
  return impl_->connection_count.load(std::memory_order_relaxed);
}

}  // namespace tether
