#include "server/server_conn.hpp"

#include "server/loop_context.hpp"

namespace tether::detail {

namespace {
StreamConfig make_config(const ServerImpl& s) {
  StreamConfig c;
  c.protocol.role = protocol::Role::server;
  c.protocol.max_frame = s.opts.max_frame;
  c.protocol.max_message = s.opts.max_message;
  c.protocol.server = &s.handshake;
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

ServerConn::ServerConn(LoopContext& ctx, uint64_t id, std::string peer)
    : WsStream(ctx.loop, make_config(ctx.server), ctx.rng, ctx.read_buf),
      ctx_(ctx),
      id_(id),
      peer_(std::move(peer)) {}

void ServerConn::stream_schedule_flush() { ctx_.schedule_flush(this); }

void ServerConn::stream_detached() { ctx_.retire(this); }

void ServerConn::stream_open() {
  opened_ = true;
  if (ctx_.server.on_open) ctx_.server.on_open(*this);
}

void ServerConn::stream_message(codec::Opcode type, std::span<const uint8_t> data) {
  if (ctx_.server.on_message)
    ctx_.server.on_message(*this, {reinterpret_cast<const char*>(data.data()), data.size()},
                           type == codec::Opcode::text ? MessageType::text : MessageType::binary);
}

void ServerConn::stream_close(const CloseInfo& info) {
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
  protocol::Handler::on_http_request(request, response);
}

}  // namespace tether::detail
