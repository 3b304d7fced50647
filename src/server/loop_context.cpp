#include "server/loop_context.hpp"

#include <sys/epoll.h>

#include <algorithm>

#include "loop/socket.hpp"
#include "server/server_conn.hpp"

namespace tether::detail {

LoopContext::LoopContext(ServerImpl& s)
    : server(s),
      conn_pool(std::make_unique<ConnPool>()),
      accept_budget(s.opts.accept_rate, s.opts.accept_rate, loop.now()) {
  configure_streams();
  // Connections flushed (or retired) in one iteration: room for a busy one up front, so that
  // heartbeat pings to several connections in the same wheel tick do not grow it mid-traffic.
  flush_list.reserve(64);
  graveyard.reserve(16);
  accept_timer.set_callback(
      [](loop::Timer&, void* self) {
        auto* ctx = static_cast<LoopContext*>(self);
        ctx->accept_paused = false;
        if (ctx->listen_fd >= 0 && !ctx->stopping) {
          ctx->loop.modify(ctx->listen_fd, EPOLLIN, ctx);
          ctx->on_io(EPOLLIN);
        }
      },
      this);
  if (server.resume) sessions = std::make_unique<resume::SessionStore>(server.resume_config, rng);
  session_timer.set_callback(
      [](loop::Timer&, void* self) {
        auto* ctx = static_cast<LoopContext*>(self);
        ctx->sessions->expire(ctx->loop.now());
        ctx->schedule_session_expiry();
      },
      this);
  shutdown_timer.set_callback(
      [](loop::Timer&, void* self) {
        auto* ctx = static_cast<LoopContext*>(self);
        // Clients that did not finish the closing handshake in time are dropped (bounded stop).
        std::vector<ServerConn*> left = ctx->all_conns();
        for (auto* c : left)
          c->abort(Cause::local_close, "server shutdown: close handshake timed out");
        ctx->maybe_finish_shutdown();
      },
      this);
}

LoopContext::~LoopContext() {
  std::vector<ServerConn*> all = all_conns();
  for (ServerConn* c : all) ServerConn::destroy(c);
  for (auto* c : graveyard) ServerConn::destroy(c);
  if (listen_fd >= 0) loop::close_fd(listen_fd);
}

void LoopContext::on_io(uint32_t) {
  if (accept_paused) return;
  // Bounded accepts per wake-up, and per second (accept_rate), so a connection flood cannot
  // starve established connections: what is not accepted waits in the kernel's backlog.
  for (int i = 0; i < 64 && !stopping && listen_fd >= 0; ++i) {
    const auto now = loop.now();
    if (!accept_budget.take(now)) {
      pause_accepting(accept_budget.next_token(now));
      return;
    }
    loop::PeerAddress peer;
    std::error_code ec;
    int fd = loop::accept_tcp(listen_fd, peer, ec);
    if (fd < 0) {
      if (ec == std::errc::operation_would_block || ec == std::errc::resource_unavailable_try_again)
        return;
      server.error("accept: " + ec.message());
      // EMFILE/ENFILE/ENOBUFS: the listener stays readable, so retrying at once would spin.
      // Back off briefly; established connections keep being served meanwhile.
      pause_accepting(now + std::chrono::milliseconds(100));
      return;
    }
    // The same text the connection gives back on retire (ServerConn::ip()), so the per-address
    // count is released under the key it was taken under.
    const bool admitted = admit(peer.ip());
    auto* c = ServerConn::create(*this, server.next_id.fetch_add(1), peer, !admitted);
    if (auto err = c->attach(fd, false)) {
      server.error("epoll add: " + err.message());
      if (admitted) server.release(c->ip());
      ServerConn::destroy(c);
      continue;
    }
    conns.insert(c);
  }
}

void LoopContext::pause_accepting(loop::TimePoint until) {
  if (accept_paused || listen_fd < 0) return;
  accept_paused = true;
  loop.modify(listen_fd, 0, this);
  loop.timers().schedule(accept_timer, until);
}

void LoopContext::configure_streams() {
  stream_config = make_stream_config(*this, false, false);
  stream_config_busy = make_stream_config(*this, true, false);
  stream_config_metrics = make_stream_config(*this, false, true);
}

bool LoopContext::admit(const std::string& ip) {
  const auto& o = server.opts;
  const std::size_t total = server.connection_count.fetch_add(1, std::memory_order_relaxed) + 1;
  bool ok = o.max_connections == 0 || total <= o.max_connections;
  if (ok && o.max_connections_per_ip > 0 &&
      std::find(o.per_ip_exempt.begin(), o.per_ip_exempt.end(), ip) == o.per_ip_exempt.end()) {
    std::lock_guard lock(server.ip_mutex);
    auto& n = server.ip_counts[ip];
    if (n >= o.max_connections_per_ip)
      ok = false;
    else
      ++n;
  }
  if (!ok) {
    server.connection_count.fetch_sub(1, std::memory_order_relaxed);
    ++server.rejected_busy;
  }
  return ok;
}

void LoopContext::schedule_flush(ServerConn* c) {
  if (c->in_flush_list) return;
  c->in_flush_list = true;
  flush_list.push_back(c);
  if (!after_io_scheduled) {
    after_io_scheduled = true;
    loop.defer([this] { after_io(); });
  }
}

void LoopContext::retire(ServerConn* c) {
  c->retired = true;
  conns.erase(c);
  if (c->topics()) {
    const auto subscribed = *c->topics();  // unsubscribe() edits c->topics()
    for (const auto& t : subscribed) unsubscribe(c, t);
  }
  if (c->admitted()) server.release(c->ip());
  graveyard.push_back(c);
  if (!after_io_scheduled) {
    after_io_scheduled = true;
    loop.defer([this] { after_io(); });
  }
}

void LoopContext::after_io() {
  after_io_scheduled = false;
  // Corked writes: one send() per connection per iteration, whatever number of messages.
  for (std::size_t i = 0; i < flush_list.size(); ++i) {
    ServerConn* c = flush_list[i];
    c->in_flush_list = false;
    if (c->attached()) c->flush();
  }
  flush_list.clear();
  for (auto* c : graveyard) ServerConn::destroy(c);
  graveyard.clear();
  if (stopping) maybe_finish_shutdown();
}

void LoopContext::begin_shutdown(uint16_t code, const std::string& reason) {
  if (stopping) return;
  stopping = true;
  loop.timers().cancel(accept_timer);
  if (listen_fd >= 0) {
    loop.remove(listen_fd);
    loop::close_fd(listen_fd);
    listen_fd = -1;
  }
  std::vector<ServerConn*> all = all_conns();
  const auto spread_ms = static_cast<uint64_t>(server.opts.restart_spread.count());
  for (auto* c : all) {
    if (!c->is_open()) {
      c->abort(Cause::local_close, "server shutting down");
    } else if (code == close_code::service_restart && spread_ms > 0) {
      // Each client gets its own delay so a restart does not bring them all back at once.
      uint64_t bits;
      rng.fill({reinterpret_cast<uint8_t*>(&bits), sizeof bits});
      c->close(code, reason + "; reconnect in " + std::to_string(bits % (spread_ms + 1)) + "ms");
    } else {
      c->close(code, reason);
    }
  }
  loop.timers().schedule(shutdown_timer, loop.now() + server.opts.shutdown_timeout);
  maybe_finish_shutdown();
}

void LoopContext::maybe_finish_shutdown() {
  if (stopping && conns.empty()) {
    loop.timers().cancel(shutdown_timer);
    loop.stop();
  }
}

void LoopContext::schedule_session_expiry() {
  if (!sessions) return;
  const auto t = sessions->next_deadline();
  if (t == loop::TimePoint::max())
    loop.timers().cancel(session_timer);
  else if (!session_timer.armed() || t < session_timer.deadline())
    loop.timers().schedule(session_timer, t);
}

ServerConn* LoopContext::find(uint64_t id) { return conns.find(id); }

std::vector<ServerConn*> LoopContext::all_conns() const {
  std::vector<ServerConn*> v;
  v.reserve(conns.size());
  conns.for_each([&](ServerConn* c) { v.push_back(c); });
  return v;
}

void LoopContext::subscribe(ServerConn* c, std::string_view topic) {
  auto& mine = c->make_topics();
  for (const auto& t : mine)
    if (t == topic) return;
  mine.emplace_back(topic);
  topics[std::string(topic)].push_back(c);
  if (mirror && c->resume_session()) session_subscribed(c, topic);
}

void LoopContext::unsubscribe(ServerConn* c, std::string_view topic) {
  auto it = topics.find(std::string(topic));
  if (it != topics.end()) {
    auto& subs = it->second;
    subs.erase(std::remove(subs.begin(), subs.end(), c), subs.end());
    if (subs.empty()) topics.erase(it);
  }
  auto* mine = c->topics();
  if (!mine) return;
  mine->erase(std::remove(mine->begin(), mine->end(), topic), mine->end());
  if (mine->empty()) c->drop_topics();
}

void LoopContext::fan_out(ServerConn* c, std::span<const uint8_t> frame, std::string_view data,
                          MessageType type) {
  if (!c->is_open()) return;
  // Slow means the kernel will not take more, not that this batch queued a lot: try to write
  // before judging.
  if (c->buffered_amount() > server.opts.send_buffer_limit) c->flush();
  if (!c->is_open()) return;
  if (c->buffered_amount() > server.opts.send_buffer_limit) {
    if (server.opts.slow_subscriber == ServerOptions::SlowSubscriber::close) {
      c->close(close_code::try_again_later, "too slow: send queue full");
    } else {
      counters.drop(metrics::DropReason::slow_subscriber);
    }
    return;
  }
  c->send_prepared(frame_for(c, frame, data, type), data, type);
}

std::span<const uint8_t> LoopContext::frame_for(ServerConn* c, std::span<const uint8_t> plain,
                                                std::string_view data, MessageType type) {
  if (c->resume_session()) return plain;  // the session frames and numbers it itself
  const int key = c->protocol().shared_deflate_key(data.size());
  if (key < 0) return plain;
  if (key != fan_deflated_key) {  // first subscriber with this key for this message
    fan_deflated_key = key;
    fan_deflated_result = c->protocol().encode_shared_deflated(
        type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
        protocol::Connection::as_bytes(data), fan_deflated);
  }
  return fan_deflated_result ? std::span<const uint8_t>(fan_deflated) : plain;
}

void LoopContext::publish_local(std::string_view topic, std::string_view data, MessageType type,
                                std::string_view stream_id, Audience who) {
  auto it = topics.find(std::string(topic));
  if (it == topics.end()) return;
  protocol::Connection::encode_server_frame(
      type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
      protocol::Connection::as_bytes(data), fan_frame);
  fan_deflated_key = -1;
  // A copy (into a reused vector): fan_out may write, fail and retire a subscriber, which
  // unsubscribes it from the list being walked.
  fan_targets.assign(it->second.begin(), it->second.end());
  for (ServerConn* c : fan_targets) {
    if (c->retired) continue;
    const bool resume_sub = c->resume_session() != nullptr;
    if ((who == Audience::plain && resume_sub) || (who == Audience::resume && !resume_sub))
      continue;
    if (resume_sub && mirror)
      session_topic_message(c, topic, stream_id, data, type);
    else
      fan_out(c, fan_frame, data, type);
  }
}

void LoopContext::broadcast_local(std::string_view data, MessageType type) {
  protocol::Connection::encode_server_frame(
      type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
      protocol::Connection::as_bytes(data), fan_frame);
  fan_deflated_key = -1;
  fan_targets.clear();
  conns.for_each([&](ServerConn* c) { fan_targets.push_back(c); });
  for (ServerConn* c : fan_targets)
    if (!c->retired) fan_out(c, fan_frame, data, type);
}

}  // namespace tether::detail
