#include "tether/client.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>

#include "client/url.hpp"
#include "loop/event_loop.hpp"
#include "loop/socket.hpp"
#include "protocol/connection.hpp"

namespace tether {

namespace {
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
}

struct Client::Impl final : loop::IoHandler, protocol::Handler {
  Impl(Loop* shared, ClientOptions o)
      : owned(shared ? nullptr : std::make_unique<Loop>()),
        loop(shared ? shared->native() : owned->native()),
        opts(std::move(o)) {}
  ~Impl() override { drop_socket(); }

  std::unique_ptr<Loop> owned;
  loop::EventLoop& loop;
  ClientOptions opts;
  std::function<void()> on_open_fn;
  std::function<void(std::string_view, MessageType)> on_message_fn;
  std::function<void(const CloseInfo&)> on_close_fn;
  std::function<void(std::string_view)> on_error_fn;

  protocol::SystemRandom rng;
  std::unique_ptr<protocol::Connection> proto;
  int fd = -1;
  bool tcp_connected = false;
  bool want_write = false;
  bool in_io = false;
  bool flush_scheduled = false;
  bool close_requested = false;
  uint16_t close_code = 1000;
  std::string close_reason;
  std::atomic<State> state{State::idle};
  struct Pending {
    std::string data;
    MessageType type;
  };
  std::deque<Pending> pending;
  std::size_t pending_bytes = 0;
  std::vector<uint8_t> rbuf = std::vector<uint8_t>(64 * 1024);

  void start() {
    if (state != State::idle && state != State::closed) return;
    std::string err;
    auto url = detail::parse_ws_url(opts.url, err);
    state = State::connecting;
    if (!url) return end({1006, err, false, Cause::connect_failed});
    if (url->secure) return end({1006, "wss:// is not supported yet (TLS arrives with issue 6)", false, Cause::connect_failed});
    std::error_code ec;
    fd = loop::connect_tcp(url->host, url->port, ec);
    if (fd < 0) return end({1006, "connect to " + url->host_header() + " failed: " + ec.message(), false, Cause::connect_failed});
    tcp_connected = false;
    if (auto e = loop.add(fd, kReadEvents | EPOLLOUT, this)) {
      return end({1006, "epoll: " + e.message(), false, Cause::connect_failed});
    }
    // Header injection guard: option strings go into the request verbatim.
    auto bad = [](std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; };
    bool injected = bad(opts.origin);
    for (auto& [k, v] : opts.headers) injected = injected || bad(k) || bad(v) || k.empty();
    for (auto& p : opts.subprotocols) injected = injected || bad(p) || p.empty();
    if (injected) return end({1006, "CR/LF or empty name in client handshake options", false, Cause::connect_failed});
    protocol::ConnectionConfig cfg;
    cfg.role = protocol::Role::client;
    cfg.max_frame = opts.max_frame;
    cfg.max_message = opts.max_message;
    proto = std::make_unique<protocol::Connection>(cfg, *this, rng);
    protocol::ClientHandshakeRequest req;
    req.host = url->host_header();
    req.target = url->target;
    uint8_t key[16];
    rng.fill(key);
    req.key = protocol::make_client_key(std::span<const uint8_t, 16>(key, 16));
    req.subprotocols = opts.subprotocols;
    req.origin = opts.origin;
    req.extra_headers = opts.headers;
    proto->start_client(std::move(req));
  }

  void on_io(uint32_t events) override {
    if (fd < 0) return;
    if (!tcp_connected) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      if (auto ec = loop::connect_result(fd)) {
        return end({1006, "connect failed: " + ec.message(), false, Cause::connect_failed});
      }
      tcp_connected = true;
      want_write = true;  // the request is queued; flush() settles the interest set
    }
    in_io = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_some();
    in_io = false;
    flush();
  }

  void read_some() {
    for (int i = 0; i < 4 && proto && !proto->should_close_transport(); ++i) {
      ssize_t n = ::recv(fd, rbuf.data(), rbuf.size(), 0);
      if (n > 0) {
        proto->receive({rbuf.data(), static_cast<std::size_t>(n)});
        if (static_cast<std::size_t>(n) < rbuf.size()) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
      proto->receive_eof(Cause::network_error,
                         n == 0 ? "server closed TCP without a close frame" : std::strerror(errno));
      break;
    }
  }

  void flush() {
    if (fd < 0 || !proto || !tcp_connected) return;
    auto& out = proto->out();
    while (!out.empty()) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.consume(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!want_write) {
          want_write = true;
          loop.modify(fd, kReadEvents | EPOLLOUT, this);
        }
        return;
      }
      proto->receive_eof(Cause::network_error, std::strerror(errno));
      break;
    }
    if (want_write) {
      want_write = false;
      loop.modify(fd, kReadEvents, this);
    }
    if (proto->should_close_transport()) drop_socket();
  }

  void schedule_flush() {
    if (in_io || flush_scheduled) return;
    flush_scheduled = true;
    loop.defer([this] {
      flush_scheduled = false;
      flush();
    });
  }

  void drop_socket() {
    if (fd >= 0) {
      loop.remove(fd);
      loop::close_fd(fd);
      fd = -1;
    }
  }

  // protocol::Handler
  void on_open() override {
    state = State::open;
    if (on_open_fn) on_open_fn();
    while (!pending.empty() && proto->state() == protocol::State::open) {
      auto& p = pending.front();
      proto->send(p.type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
                  protocol::Connection::as_bytes(p.data));
      pending_bytes -= p.data.size();
      pending.pop_front();
    }
    if (close_requested) do_close(close_code, close_reason);
    schedule_flush();
  }
  void on_message(codec::Opcode type, std::span<const uint8_t> data) override {
    if (on_message_fn)
      on_message_fn({reinterpret_cast<const char*>(data.data()), data.size()},
                    type == codec::Opcode::text ? MessageType::text : MessageType::binary);
  }
  void on_close(const CloseInfo& info) override {
    // The socket is dropped once the final bytes (our close echo) are flushed.
    state = State::closed;
    if (on_close_fn) on_close_fn(info);
    if (owned) loop.stop();
  }

  void end(const CloseInfo& info) {
    drop_socket();
    if (proto) {
      proto->receive_eof(info.cause, info.reason);  // emits on_close once
    } else {
      on_close(info);
    }
  }

  SendStatus do_send(std::string_view data, MessageType type) {
    if (state == State::open && proto && proto->state() == protocol::State::open) {
      if (proto->out().size() + data.size() > opts.send_buffer_max) return SendStatus::dropped;
      proto->send(type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary,
                  protocol::Connection::as_bytes(data));
      schedule_flush();
      return proto->out().size() > opts.send_buffer_limit ? SendStatus::backpressure
                                                          : SendStatus::success;
    }
    if (state == State::closing || state == State::closed || close_requested)
      return SendStatus::dropped;
    if (pending.size() >= opts.offline_queue_max_messages ||
        pending_bytes + data.size() > opts.offline_queue_max_bytes)
      return SendStatus::dropped;
    pending.push_back({std::string(data), type});
    pending_bytes += data.size();
    return SendStatus::success;
  }

  void do_close(uint16_t code, std::string_view reason) {
    if (state == State::open && proto) {
      if (proto->close(code, reason, Cause::local_close)) state = State::closing;
      schedule_flush();
    } else if (state == State::connecting || state == State::idle) {
      close_requested = true;  // after the queued sends, once open
      close_code = code;
      close_reason = std::string(reason);
    }
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(nullptr, std::move(options))) {}
Client::Client(Loop& loop, ClientOptions options)
    : impl_(std::make_unique<Impl>(&loop, std::move(options))) {}
Client::~Client() = default;

void Client::on_open(std::function<void()> fn) { impl_->on_open_fn = std::move(fn); }
void Client::on_message(std::function<void(std::string_view, MessageType)> fn) {
  impl_->on_message_fn = std::move(fn);
}
void Client::on_close(std::function<void(const CloseInfo&)> fn) { impl_->on_close_fn = std::move(fn); }
void Client::on_error(std::function<void(std::string_view)> fn) { impl_->on_error_fn = std::move(fn); }

void Client::connect() {
  if (impl_->loop.in_loop_thread()) {
    impl_->start();
  } else {
    auto* i = impl_.get();
    impl_->loop.post([i] { i->start(); });
  }
}

SendStatus Client::send(std::string_view data, MessageType type) {
  if (impl_->loop.in_loop_thread()) return impl_->do_send(data, type);
  auto* i = impl_.get();
  impl_->loop.post([i, copy = std::string(data), type] { i->do_send(copy, type); });
  return impl_->state == State::closed ? SendStatus::dropped : SendStatus::success;
}

void Client::close(uint16_t code, std::string_view reason) {
  if (impl_->loop.in_loop_thread()) return impl_->do_close(code, reason);
  auto* i = impl_.get();
  impl_->loop.post([i, code, r = std::string(reason)] { i->do_close(code, r); });
}

void Client::run() {
  if (impl_->owned) impl_->loop.run();
}

Client::State Client::state() const { return impl_->state.load(); }
std::size_t Client::buffered_amount() const { return impl_->proto ? impl_->proto->out().size() : 0; }

}  // namespace tether
