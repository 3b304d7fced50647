#include "server/server_conn.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "loop/socket.hpp"
#include "server/loop_context.hpp"

namespace tether::detail {

namespace {
protocol::ConnectionConfig make_config(const ServerImpl& s) {
  protocol::ConnectionConfig c;
  c.role = protocol::Role::server;
  c.max_frame = s.opts.max_frame;
  c.max_message = s.opts.max_message;
  c.server = &s.handshake;
  return c;
}
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
}  // namespace

ServerConn::ServerConn(LoopContext& ctx, int fd, uint64_t id, std::string peer)
    : ctx_(ctx), fd_(fd), id_(id), peer_(std::move(peer)), proto_(make_config(ctx.server), *this, ctx.rng) {}

SendStatus ServerConn::send(std::string_view data, MessageType type) {
  if (dead_ || proto_.state() != protocol::State::open) return SendStatus::dropped;
  if (proto_.out().size() + data.size() > ctx_.server.opts.send_buffer_max) return SendStatus::dropped;
  proto_.send(type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
              protocol::Connection::as_bytes(data));
  schedule_flush();
  return proto_.out().size() > ctx_.server.opts.send_buffer_limit ? SendStatus::backpressure
                                                                  : SendStatus::success;
}

void ServerConn::close(uint16_t code, std::string_view reason) {
  if (dead_) return;
  proto_.close(code, reason, Cause::local_close);
  schedule_flush();
}

std::size_t ServerConn::buffered_amount() const { return proto_.out().size(); }

void ServerConn::schedule_flush() {
  if (!in_io_) ctx_.schedule_flush(this);  // inside on_io the flush happens on the way out
}

void ServerConn::on_io(uint32_t events) {
  if (dead_) return;
  in_io_ = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_some();
  in_io_ = false;
  if (!dead_) flush();
}

void ServerConn::read_some() {
  // Level-triggered: a few reads per wake-up, then let other connections run (fairness).
  for (int i = 0; i < 4 && !dead_ && !proto_.should_close_transport(); ++i) {
    ssize_t n = ::recv(fd_, ctx_.read_buf.data(), ctx_.read_buf.size(), 0);
    if (n > 0) {
      proto_.receive({ctx_.read_buf.data(), static_cast<std::size_t>(n)});
      if (static_cast<std::size_t>(n) < ctx_.read_buf.size()) break;
      continue;
    }
    if (n == 0) {
      proto_.receive_eof(Cause::network_error, "peer closed TCP without a close frame");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      break;
    } else {
      proto_.receive_eof(Cause::network_error, std::strerror(errno));
    }
    break;
  }
}

void ServerConn::flush() {
  if (dead_) return;
  auto& out = proto_.out();
  while (!out.empty()) {
    ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out.consume(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!want_write_) {
        want_write_ = true;
        ctx_.loop.modify(fd_, kReadEvents | EPOLLOUT, this);
      }
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    proto_.receive_eof(Cause::network_error, n < 0 ? std::strerror(errno) : "write failed");
    destroy();
    return;
  }
  if (want_write_) {
    want_write_ = false;
    ctx_.loop.modify(fd_, kReadEvents, this);
  }
  if (proto_.should_close_transport()) destroy();
}

void ServerConn::abort(Cause cause, std::string_view why) {
  if (dead_) return;
  proto_.receive_eof(cause, why);
  destroy();
}

void ServerConn::destroy() {
  if (dead_) return;
  dead_ = true;
  ctx_.loop.remove(fd_);
  loop::close_fd(fd_);
  ctx_.retire(this);
}

void ServerConn::on_open() {
  opened_ = true;
  if (ctx_.server.on_open) ctx_.server.on_open(*this);
}

void ServerConn::on_message(codec::Opcode type, std::span<const uint8_t> data) {
  if (ctx_.server.on_message)
    ctx_.server.on_message(*this, {reinterpret_cast<const char*>(data.data()), data.size()},
                           type == codec::Opcode::text ? MessageType::text : MessageType::binary);
}

void ServerConn::on_close(const CloseInfo& info) {
  if (opened_) {
    if (ctx_.server.on_close) ctx_.server.on_close(*this, info);
  } else if (info.cause == Cause::handshake_failed) {
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
