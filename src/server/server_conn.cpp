#include "server/server_conn.hpp"

#include <ctime>

#include "metrics/exposition.hpp"
#include "server/loop_context.hpp"
#include "server/metrics_http.hpp"
#include "server/static_files.hpp"

namespace tether::detail {

namespace {
StreamConfig make_config(const ServerImpl& s, bool busy) {
  StreamConfig c;
  c.protocol.role = protocol::Role::server;
  c.protocol.max_frame = s.opts.max_frame;
  c.protocol.max_message = s.opts.max_message;
  c.protocol.http.max_head_bytes = s.opts.max_handshake_size;
  c.protocol.server = busy ? &s.handshake_busy : &s.handshake;
  c.control_limit =
      limits::RateLimit(s.opts.max_control_frames_per_second, s.opts.max_control_frames_per_second);
  c.close_on_overflow = s.opts.send_overflow == ServerOptions::SendOverflow::close;
  c.tls = s.tls;
  c.protocol.deflate = &s.opts.deflate;  // negotiated per connection when enabled
  const LivenessOptions& o = s.opts;
  c.liveness = {o.ping_interval, o.ping_timeout, o.handshake_timeout, o.idle_timeout,
                o.close_timeout};
  c.send_buffer_limit = s.opts.send_buffer_limit;
  c.send_buffer_max = s.opts.send_buffer_max;
  c.tcp_user_timeout = o.tcp_user_timeout;
  c.tcp_keepalive = o.tcp_keepalive;
  c.socket_send_buffer = o.socket_send_buffer;
  c.socket_receive_buffer = o.socket_receive_buffer;
  return c;
}

}  // namespace

StreamConfig make_stream_config(LoopContext& ctx, bool busy, bool metrics_only) {
  StreamConfig c = make_config(ctx.server, busy);
  c.counters = &ctx.counters;
  c.protocol.pools = &ctx.loop.buffer_pools();
  c.protocol.rng = &ctx.rng;
  c.protocol.names = &ctx.names;
  c.loop = &ctx.loop;
  c.owner = &ctx;
  if (metrics_only) {
    // The metrics port speaks plain HTTP only; its own traffic is not what /metrics reports.
    static const protocol::ServerHandshakeConfig no_upgrades = [] {
      protocol::ServerHandshakeConfig h;
      h.reject_status = 404;
      h.reject_reason = "the metrics port serves no WebSocket";
      return h;
    }();
    c.protocol.server = &no_upgrades;
    c.protocol.deflate = nullptr;
    c.counters = &metrics::unread_counters();
  }
  return c;
}

ServerConn::ServerConn(LoopContext& ctx, uint64_t id, const loop::PeerAddress& peer, bool busy,
                       bool metrics_only)
    : WsStream(metrics_only ? ctx.stream_config_metrics
                            : (busy ? ctx.stream_config_busy : ctx.stream_config)),
      peer_(peer),
      busy_(busy),
      metrics_only_(metrics_only),
      id_(id) {}

ServerConn* ServerConn::create(LoopContext& ctx, uint64_t id, const loop::PeerAddress& peer,
                               bool busy, bool metrics_only) {
  void* p = ctx.conn_pool->allocate();
  try {
    return new (p) ServerConn(ctx, id, peer, busy, metrics_only);
  } catch (...) {
    ctx.conn_pool->release(p);
    throw;
  }
}

void ServerConn::destroy(ServerConn* c) {
  if (c == nullptr) return;
  ConnPool& pool = *c->context().conn_pool;
  c->~ServerConn();
  pool.release(c);
}

std::vector<std::string>& ServerConn::make_topics() {
  auto& t = ext().topics;
  if (!t) t = std::make_unique<std::vector<std::string>>();
  return *t;
}

void ServerConn::drop_topics() {
  if (!ext_) return;
  ext_->topics.reset();
  trim_ext();
}

void ServerConn::stream_schedule_flush() { ctx().schedule_flush(this); }

void ServerConn::stream_detached() { ctx().retire(this); }

void ServerConn::stream_open() {
  resume_ = ctx().sessions && subprotocol() == resume::subprotocol;
  if (resume_) return;  // the application hears of it once the hello has set up the session
  opened_ = true;
  if (ctx().server.on_open) ctx().server.on_open(*this);
}

SendStatus ServerConn::send(std::string_view data, MessageType type) {
  if (!resume_) return send_message(data, type);
  if (!session() || !is_open()) return SendStatus::dropped;
  ctx().session_send(*session(), type, data);
  return buffered() > ctx().server.opts.send_buffer_limit ? SendStatus::backpressure
                                                          : SendStatus::success;
}

void ServerConn::send_prepared(std::span<const uint8_t> frame, std::string_view data,
                               MessageType type) {
  if (resume_) {
    if (session() && is_open()) ctx().session_send(*session(), type, data);
    return;
  }
  if (buffered() + frame.size() > ctx().server.opts.send_buffer_max) {
    counters().drop(metrics::DropReason::send_buffer_full);
    return;
  }
  if (protocol().send_encoded(frame)) {
    note_message_sent();
    ctx().schedule_flush(this);
  }
}

void ServerConn::session_emit(MessageType type, std::string_view data) {
  session()->endpoint.send(
      type, protocol::Connection::as_bytes(data), loop().now(),
      [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); });
  arm_no_later_than(session()->endpoint.next_deadline());
}

void ServerConn::session_moved() {
  if (!session()) return;
  ctx().sessions->end(*session());
  set_session(nullptr);
  close_stream(1008, "session resumed on another node", Cause::local_close);
}

void ServerConn::resume_frame(MessageType type, std::span<const uint8_t> bytes) {
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // A frame that cannot be queued would leave a hole in the numbering: close instead, and let
  // the client resume, which replays it from the window.
  if (send_message(view, type) == SendStatus::dropped && is_open())
    close_stream(1013, "send buffer full; resume to continue", Cause::local_close);
}

void ServerConn::deliver(MessageType type, std::span<const uint8_t> data) {
  if (ctx().server.on_message)
    ctx().server.on_message(*this, {reinterpret_cast<const char*>(data.data()), data.size()}, type);
}

void ServerConn::resume_message(MessageType type, std::span<const uint8_t> data) {
  const auto now = loop().now();
  auto sink = [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); };
  if (claiming_) {
    // The session is being loaded from Redis: keep what arrives meanwhile (a client sends little
    // before the welcome), bounded.
    auto& held = ext().held;
    if (!held) held = std::make_unique<std::vector<std::pair<MessageType, std::string>>>();
    if (held->size() >= 256) {
      close_stream(1008, "too many messages before the welcome", Cause::protocol_error);
      return;
    }
    held->emplace_back(type, std::string(reinterpret_cast<const char*>(data.data()), data.size()));
    return;
  }
  if (!session()) {
    if (ctx().mirror) {
      // Several nodes: the session may live in Redis (carried by another node, or by this one
      // before a restart). Claim it there; a copy in this loop's memory may be stale.
      resume::Hello hello;
      std::string why;
      if (resume::parse_hello(type, data, hello, why) == resume::Error::none &&
          !hello.session.empty()) {
        if (resume::Session* local = ctx().sessions->find(hello.session)) {
          if (ServerConn* old = local->owner ? ctx().find(local->owner) : nullptr) {
            old->set_session(nullptr);
            old->close_stream(1008, "session resumed on another connection", Cause::local_close);
          }
          ctx().sessions->end(*local);
        }
        claiming_ = true;
        ctx().mirror->claim(
            hello.session, hello.last,
            [ctx = &ctx(), id = id_, sid = hello.session, last = hello.last](ClaimResult& r) {
              if (ServerConn* c = ctx->find(id)) c->claimed(sid, last, r);
            });
        return;
      }
    }
    auto h = ctx().sessions->accept_hello(type, data, id_, now, sink);
    if (h.error != resume::Error::none) {
      ctx().server.error("resume hello from " + peer() + ": " + h.message);
      close_stream(resume::close_code(h.error), h.message, Cause::protocol_error);
      return;
    }
    if (!h.session) return;  // a P/Q before the hello (a P was answered): still waiting for it
    hello_done(h);
    return;
  }
  auto r = session()->endpoint.receive(type, data, now, sink);
  if (r.kind == resume::Received::Kind::deliver) {
    if (ctx().mirror) ctx().mirror->received(session()->id, r.seq);
    deliver(r.type, r.payload);
  } else if (r.kind == resume::Received::Kind::error) {
    ctx().server.error("resume from " + peer() + ": " + r.message);
    close_stream(resume::close_code(r.error), r.message, Cause::protocol_error);
    return;
  }
  if (session()) arm_no_later_than(session()->endpoint.next_deadline());
}

void ServerConn::claimed(const resume::SessionId& sid, uint64_t last, ClaimResult& r) {
  claiming_ = false;
  if (!is_open()) return;
  auto sink = [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); };
  const char* failed = nullptr;
  resume::Session* s = nullptr;
  if (r.kind == ClaimResult::Kind::unavailable) {
    failed = "session store unavailable";
  } else if (r.kind == ClaimResult::Kind::unknown) {
    failed = "unknown session";
  } else if (last > r.out) {
    failed = "client has messages the session store never had";
  } else if (r.entries.size() != r.out - last ||
             (!r.entries.empty() && r.entries.front().seq != last + 1)) {
    failed = "replay window exceeded";
  } else if (!(s = ctx().sessions->adopt(sid, id_))) {
    failed = "session table full";
  }
  resume::HelloResult h;
  if (failed) {
    h = ctx().sessions->fresh_after_failed_resume(id_, failed, sink);
  } else {
    s->tag = ctx().next_session_tag++;
    s->endpoint.restore(last, r.out, r.in);
    for (auto& e : r.entries)
      s->endpoint.stash(e.seq, e.type, protocol::Connection::as_bytes(e.data), loop().now());
    s->stream_pos = std::move(r.positions);
    h = ctx().sessions->resume_adopted(*s, last, sink);
  }
  if (!h.session) {
    close_stream(1013, "session table full", Cause::local_close);
    return;
  }
  hello_done(h);
  // What the client sent while the session was loading, in order.
  auto held = ext_ ? std::move(ext_->held) : nullptr;
  trim_ext();
  if (!held) return;
  for (auto& [t, bytes] : *held) {
    if (!is_open()) break;
    resume_message(t, protocol::Connection::as_bytes(bytes));
  }
}

void ServerConn::hello_done(resume::HelloResult& h) {
  if (h.outcome == resume::Received::Outcome::resumed) {
    counters().resumes.add();
    counters().resume_replays.add(h.replayed);
  } else if (h.outcome == resume::Received::Outcome::resume_failed) {
    counters().resume_failures.add();
  }
  if (h.previous_owner) {
    // The client came back before its old connection was found dead: that one is stale.
    if (ServerConn* old = ctx().find(h.previous_owner)) {
      old->set_session(nullptr);
      old->close_stream(1008, "session resumed on another connection", Cause::local_close);
    }
  }
  set_session(h.session);
  if (session()->tag == 0) {
    session()->tag = ctx().next_session_tag++;
    if (ctx().mirror && h.outcome != resume::Received::Outcome::resumed)
      ctx().mirror->created(session()->id);
  }
  ctx().schedule_session_expiry();
  arm_no_later_than(session()->endpoint.next_deadline());
  opened_ = true;
  if (ctx().server.on_open) ctx().server.on_open(*this);
}

loop::TimePoint ServerConn::stream_deadline() const {
  return session() ? session()->endpoint.next_deadline() : loop::TimePoint::max();
}

void ServerConn::stream_timer(loop::TimePoint now) {
  if (session())
    session()->endpoint.on_timer(
        now, [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); });
}

void ServerConn::stream_message(codec::Opcode type, std::span<const uint8_t> data) {
  const auto t = type == codec::Opcode::text ? MessageType::text : MessageType::binary;
  if (resume_)
    resume_message(t, data);
  else
    deliver(t, data);
}

void ServerConn::stream_close(const CloseInfo& info) {
  if (session()) {
    // A clean 1000 ends the session; a protocol failure cannot be trusted to resume; anything
    // else (network error, heartbeat timeout, going away) keeps it for the window.
    if ((info.code == 1000 && info.was_clean) || info.code == 1002) {
      if (ctx().mirror) ctx().mirror->ended(session()->id);
      ctx().sessions->end(*session());
    } else
      ctx().sessions->detach(*session(), id_, loop().now());
    set_session(nullptr);
    ctx().schedule_session_expiry();
  }
  if (opened_) {
    if (ctx().server.on_close) ctx().server.on_close(*this, info);
  } else if (info.cause == Cause::handshake_failed || info.cause == Cause::handshake_timeout) {
    ctx().server.error("handshake from " + peer() + " failed: " + info.reason);
  }
}

void ServerConn::on_http_request(const protocol::HttpHead& request, std::string& response) {
  std::string_view target = request.target;
  if (request.method == "GET" && (target == "/healthz" || target.starts_with("/healthz?"))) {
    // Still 200 with Redis down: this node serves its own connections (a load balancer should
    // keep sending it traffic); the body and header say what is degraded.
    if (ctx().server.redis_up.load(std::memory_order_relaxed) == 0)
      response =
          protocol::http_response(200, "Content-Type: text/plain\r\nX-Tether-Redis: down\r\n",
                                  "degraded: redis down (local delivery only)\n");
    else
      response = protocol::http_response(200, "Content-Type: text/plain\r\n", "ok\n");
    return;
  }
  // Prometheus metrics: on the metrics port when there is one, else on this one.
  const auto& o = ctx().server.opts;
  const std::string_view metrics_path =
      metrics_only_ ? (o.metrics_path.empty() ? std::string_view("/metrics") : o.metrics_path)
                    : (o.metrics_port == 0 ? std::string_view(o.metrics_path) : std::string_view());
  if ((request.method == "GET" || request.method == "HEAD") && !metrics_path.empty() &&
      target.substr(0, target.find('?')) == metrics_path) {
    const std::string headers =
        "Content-Type: " + std::string(metrics::content_type) + "\r\nCache-Control: no-cache\r\n";
    response = protocol::http_response(200, headers, render_metrics(ctx().server));
    if (request.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
    return;
  }
  if (metrics_only_) {
    response = protocol::http_response(404, "Content-Type: text/plain\r\n", "not found\n");
    return;
  }
  // Built-in pages (/tether.js, add_page()), then files from --static DIR, else 426.
  if (request.method == "GET" || request.method == "HEAD") {
    std::string_view path = target.substr(0, target.find('?'));
    auto it = ctx().server.pages.find(std::string(path));
    if (it != ctx().server.pages.end()) {
      const auto& page = it->second;
      std::string headers = "Content-Type: " + page.content_type +
                            "\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n";
      response = protocol::http_response(200, headers, page.body);
      if (request.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
      return;
    }
  }
  // Plain requests other than /healthz: files from --static DIR, else 426 (a WebSocket endpoint).
  if (!ctx().server.opts.static_dir.empty()) {
    response = serve_static(ctx().server.opts.static_dir, request, std::time(nullptr));
    return;
  }
  protocol::Handler::on_http_request(request, response);
}

}  // namespace tether::detail

// tether::Connection: every one is a ServerConn (the only class deriving from it), so its
// functions forward without a vtable.
namespace tether {
namespace {
const detail::ServerConn& impl(const Connection& c) {
  return static_cast<const detail::ServerConn&>(c);
}
detail::ServerConn& impl(Connection& c) { return static_cast<detail::ServerConn&>(c); }
}  // namespace

uint64_t Connection::id() const { return impl(*this).id(); }
std::string Connection::peer() const { return impl(*this).peer(); }
std::string_view Connection::path() const { return impl(*this).path(); }
std::string_view Connection::subprotocol() const { return impl(*this).subprotocol(); }
SendStatus Connection::send(std::string_view data, MessageType type) {
  return impl(*this).send(data, type);
}
void Connection::close(uint16_t code, std::string_view reason) { impl(*this).close(code, reason); }
std::size_t Connection::buffered_amount() const { return impl(*this).buffered_amount(); }
std::optional<std::chrono::nanoseconds> Connection::rtt() const { return impl(*this).rtt(); }
ConnectionStats Connection::stats() const { return impl(*this).stats(); }
}  // namespace tether
