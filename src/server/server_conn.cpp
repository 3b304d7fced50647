#include "server/server_conn.hpp"

#include <ctime>

#include "server/loop_context.hpp"
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
  c.max_control_per_second = s.opts.max_control_frames_per_second;
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
  return c;
}
}  // namespace

ServerConn::ServerConn(LoopContext& ctx, uint64_t id, std::string peer, std::string ip, bool busy)
    : WsStream(ctx.loop, make_config(ctx.server, busy), ctx.rng, ctx.loop.read_buffer()),
      ctx_(ctx),
      id_(id),
      peer_(std::move(peer)),
      ip_(std::move(ip)),
      busy_(busy) {}

void ServerConn::stream_schedule_flush() { ctx_.schedule_flush(this); }

void ServerConn::stream_detached() { ctx_.retire(this); }

void ServerConn::stream_open() {
  resume_ = ctx_.sessions && subprotocol() == resume::subprotocol;
  if (resume_) return;  // the application hears of it once the hello has set up the session
  opened_ = true;
  if (ctx_.server.on_open) ctx_.server.on_open(*this);
}

SendStatus ServerConn::send(std::string_view data, MessageType type) {
  if (!resume_) return send_message(data, type);
  if (!session_ || !is_open()) return SendStatus::dropped;
  session_->endpoint.send(
      type, protocol::Connection::as_bytes(data), loop_.now(),
      [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); });
  arm_no_later_than(session_->endpoint.next_deadline());
  return buffered() > ctx_.server.opts.send_buffer_limit ? SendStatus::backpressure
                                                         : SendStatus::success;
}

void ServerConn::send_prepared(std::span<const uint8_t> frame, std::string_view data,
                               MessageType type) {
  if (resume_) {
    send(data, type);
    return;
  }
  if (buffered() + frame.size() > ctx_.server.opts.send_buffer_max) return;
  if (protocol().send_encoded(frame)) {
    note_message_sent();
    ctx_.schedule_flush(this);
  }
}

void ServerConn::resume_frame(MessageType type, std::span<const uint8_t> bytes) {
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // A frame that cannot be queued would leave a hole in the numbering: close instead, and let
  // the client resume, which replays it from the window.
  if (send_message(view, type) == SendStatus::dropped && is_open())
    close_stream(1013, "send buffer full; resume to continue", Cause::local_close);
}

void ServerConn::deliver(MessageType type, std::span<const uint8_t> data) {
  if (ctx_.server.on_message)
    ctx_.server.on_message(*this, {reinterpret_cast<const char*>(data.data()), data.size()}, type);
}

void ServerConn::resume_message(MessageType type, std::span<const uint8_t> data) {
  const auto now = loop_.now();
  auto sink = [this](MessageType t, std::span<const uint8_t> b) { resume_frame(t, b); };
  if (!session_) {
    auto h = ctx_.sessions->accept_hello(type, data, id_, now, sink);
    if (h.error != resume::Error::none) {
      ctx_.server.error("resume hello from " + peer_ + ": " + h.message);
      close_stream(resume::close_code(h.error), h.message, Cause::protocol_error);
      return;
    }
    if (!h.session) return;  // a P/Q before the hello (a P was answered): still waiting for it
    if (h.previous_owner) {
      // The client came back before its old connection was found dead: that one is stale.
      if (ServerConn* old = ctx_.find(h.previous_owner)) {
        old->session_ = nullptr;
        old->close_stream(1008, "session resumed on another connection", Cause::local_close);
      }
    }
    session_ = h.session;
    ctx_.schedule_session_expiry();
    arm_no_later_than(session_->endpoint.next_deadline());
    opened_ = true;
    if (ctx_.server.on_open) ctx_.server.on_open(*this);
    return;
  }
  auto r = session_->endpoint.receive(type, data, now, sink);
  if (r.kind == resume::Received::Kind::deliver) {
    deliver(r.type, r.payload);
  } else if (r.kind == resume::Received::Kind::error) {
    ctx_.server.error("resume from " + peer_ + ": " + r.message);
    close_stream(resume::close_code(r.error), r.message, Cause::protocol_error);
    return;
  }
  if (session_) arm_no_later_than(session_->endpoint.next_deadline());
}

loop::TimePoint ServerConn::stream_deadline() const {
  return session_ ? session_->endpoint.next_deadline() : loop::TimePoint::max();
}

void ServerConn::stream_timer(loop::TimePoint now) {
  if (session_)
    session_->endpoint.on_timer(
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
  if (session_) {
    // A clean 1000 ends the session; a protocol failure cannot be trusted to resume; anything
    // else (network error, heartbeat timeout, going away) keeps it for the window.
    if ((info.code == 1000 && info.was_clean) || info.code == 1002)
      ctx_.sessions->end(*session_);
    else
      ctx_.sessions->detach(*session_, id_, loop_.now());
    session_ = nullptr;
    ctx_.schedule_session_expiry();
  }
  if (opened_) {
    if (ctx_.server.on_close) ctx_.server.on_close(*this, info);
  } else if (info.cause == Cause::handshake_failed || info.cause == Cause::handshake_timeout) {
    ctx_.server.error("handshake from " + peer_ + " failed: " + info.reason);
  }
}

void ServerConn::on_http_request(const protocol::HttpHead& request, std::string& response) {
  std::string_view target = request.target;
  if (request.method == "GET" && (target == "/healthz" || target.starts_with("/healthz?"))) {
    response = protocol::http_response(200, "Content-Type: text/plain\r\n", "ok\n");
    return;
  }
  // Built-in pages (/tether.js, add_page()), then files from --static DIR, else 426.
  if (request.method == "GET" || request.method == "HEAD") {
    std::string_view path = target.substr(0, target.find('?'));
    auto it = ctx_.server.pages.find(std::string(path));
    if (it != ctx_.server.pages.end()) {
      const auto& page = it->second;
      std::string headers = "Content-Type: " + page.content_type +
                            "\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n";
      response = protocol::http_response(200, headers, page.body);
      if (request.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
      return;
    }
  }
  // Plain requests other than /healthz: files from --static DIR, else 426 (a WebSocket endpoint).
  if (!ctx_.server.opts.static_dir.empty()) {
    response = serve_static(ctx_.server.opts.static_dir, request, std::time(nullptr));
    return;
  }
  protocol::Handler::on_http_request(request, response);
}

}  // namespace tether::detail
