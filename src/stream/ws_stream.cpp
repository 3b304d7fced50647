#include "stream/ws_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "loop/socket.hpp"

namespace tether::detail {

namespace {
// Edge-triggered: epoll reports a socket once per arrival instead of polling every reported
// socket again on the next wait (level-triggered), which costs the kernel a second poll per
// message. So read_some() must leave nothing unread without a new report to come: it reads until
// a short read (which empties the queue; data arriving later reports again) or EAGAIN, and when
// it stops early for fairness it modifies the registration, which reports the socket again.
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
// The registration's events: always reading, and writable too while want_write.
constexpr uint32_t interest(bool want_write) { return kReadEvents | (want_write ? EPOLLOUT : 0u); }

long long whole_ms(loop::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

static_assert(std::is_standard_layout_v<StreamConfig> && offsetof(StreamConfig, protocol) == 0,
              "WsStream::config() finds the StreamConfig from its first member");

namespace {
loop::EventLoop& loop_of(const StreamConfig& config) {
  if (config.loop == nullptr) throw std::logic_error("StreamConfig::loop not set");
  return *config.loop;
}
}  // namespace

WsStream::WsStream(const StreamConfig& config)
    : loop::TimerBase(&WsStream::fire),
      proto_(config.protocol, *this),
      live_(loop_of(config).now()) {}

WsStream::~WsStream() {
  if (timer().armed()) loop().timers().cancel(timer());
  if (fd_ >= 0) {
    loop().remove(fd_);
    loop::close_fd(fd_);
  }
  config().counters->send_queue_bytes.move(queue_reported_, 0);
}

ConnectionStats WsStream::stats() const {
  ConnectionStats s;
  s.bytes_received = traffic_.get(TrafficCounters::bytes_received);
  s.bytes_sent = traffic_.get(TrafficCounters::bytes_sent);
  s.messages_received = traffic_.get(TrafficCounters::messages_received);
  s.messages_sent = traffic_.get(TrafficCounters::messages_sent);
  if (was_open_) s.handshake_duration = std::chrono::microseconds(handshake_us_);
  if (attached_at_ != loop::TimePoint{}) s.age = loop().now() - attached_at_;
  return s;
}

void WsStream::report_queue() {
  // In 32 bits: a share of the gauge past 4 GiB is reported as 4 GiB.
  const auto q =
      static_cast<uint32_t>(std::min<std::size_t>(fd_ >= 0 ? buffered() : 0, UINT32_MAX));
  if (q == queue_reported_) return;
  config().counters->send_queue_bytes.move(queue_reported_, q);
  queue_reported_ = q;
}

std::error_code WsStream::attach(int fd, bool connecting) {
  fd_ = fd;
  attached_at_ = loop().now();
  if (config().tls)
    tls_ = std::make_unique<tls::Session>(config().tls, proto_.role() == protocol::Role::server,
                                          config().tls_host);
  connecting_ = connecting;
  if (config().tcp_user_timeout > loop::Duration::zero()) {
    // RFC 5482: bound how long sent data may stay unacknowledged before the kernel gives up.
    unsigned ms = static_cast<unsigned>(whole_ms(config().tcp_user_timeout));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  }
  if (config().socket_send_buffer > 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &config().socket_send_buffer, sizeof(int));
  if (config().socket_receive_buffer > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &config().socket_receive_buffer, sizeof(int));
  if (config().tcp_keepalive) {
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  }
  want_write_ = connecting;
  if (auto ec = loop().add(fd, interest(want_write_), this)) {
    fd_ = -1;
    loop::close_fd(fd);
    return ec;
  }
  rearm();  // the handshake deadline
  return {};
}

SendStatus WsStream::send_message(std::string_view data, MessageType type) {
  if (fd_ < 0 || proto_.state() != protocol::State::open) return SendStatus::dropped;
  if (proto_.out().size() + data.size() > config().send_buffer_max) {
    // The peer is not reading: bounded memory means this message cannot be queued.
    config().counters->drop(metrics::DropReason::send_buffer_full);
    if (config().close_on_overflow)
      close_stream(1008, "send buffer full: peer not reading", Cause::local_close);
    return SendStatus::dropped;
  }
  const auto op = type == MessageType::text ? codec::Opcode::text : codec::Opcode::binary;
  const auto payload = protocol::Connection::as_bytes(data);
  // A reply to the message being delivered, nothing queued before it: written from the read
  // buffer now, with no copy (write_in_place), instead of copied into the queue.
  const auto frame =
      in_io_ && !tls_ ? proto_.frame_in_place(op, payload) : std::span<const uint8_t>{};
  if (!frame.empty())
    write_in_place(frame);
  else
    proto_.send(op, payload);
  live_.message(loop().now());
  traffic_.add(TrafficCounters::messages_sent, 1);
  config().counters->messages_sent.add();
  if (!in_io_) stream_schedule_flush();
  return proto_.out().size() > config().send_buffer_limit ? SendStatus::backpressure
                                                          : SendStatus::success;
}

bool WsStream::ping_now(loop::TimePoint due, bool write_now) {
  if (fd_ < 0 || proto_.state() != protocol::State::open) return false;
  const auto now = loop().now();
  uint8_t payload[liveness::ping_payload_size];
  liveness::encode_ping(++ping_seq_, now, payload);  // the real send time, for the RTT
  proto_.ping(payload);
  // Queued (ahead of data under backpressure): our side is done. Stamped with the time the
  // ping was due rather than the timer tick that noticed it, so the period stays the interval
  // instead of drifting by a tick each time.
  live_.pinged(std::min(now, due));
  if (in_io_) return true;  // written at the end of this stream's I/O callback
  if (write_now)
    flush();
  else
    stream_schedule_flush();
  return true;
}

void WsStream::close_stream(uint16_t code, std::string_view reason, Cause cause) {
  if (fd_ < 0 || !proto_.close(code, reason, cause)) return;
  live_.closing(loop().now());
  rearm();
  if (!in_io_) stream_schedule_flush();
}

void WsStream::abort(Cause cause, std::string_view why) {
  if (fd_ < 0) return;
  proto_.receive_eof(cause, why);
  detach();
}

void WsStream::on_io(uint32_t events) {
  if (fd_ < 0) return;
  if (connecting_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (auto ec = loop::connect_result(fd_)) {
      abort(Cause::connect_failed, "connect failed: " + ec.message());
      return;
    }
    connecting_ = false;  // the handshake request is queued; flush() settles the interest set
  }
  in_io_ = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_some();
  in_io_ = false;
  flush();
}

void WsStream::read_some() {
  // A few reads per wake-up, then let other connections run (fairness).
  constexpr int kReadsPerWake = 4;
  const std::span<uint8_t> buf = loop().read_buffer();
  int reads = 0;
  while (fd_ >= 0 && !proto_.should_close_transport()) {
    if (reads == kReadsPerWake) {
      // Edge-triggered: no new report comes for bytes already queued, so ask for one (the
      // modification polls the socket and reports it again if it is still readable).
      loop().modify(fd_, interest(want_write_), this);
      break;
    }
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) {
      ++reads;
      live_.received(loop().now());  // any inbound byte is life
      traffic_.add(TrafficCounters::bytes_received, static_cast<uint64_t>(n));
      config().counters->bytes_received.add(static_cast<uint64_t>(n));
      if (tls_) {
        if (!receive_tls(static_cast<std::size_t>(n))) break;
      } else {
        proto_.receive({buf.data(), static_cast<std::size_t>(n)});
      }
      if (static_cast<std::size_t>(n) < buf.size()) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;  // interrupted before reading anything
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n == 0)
      proto_.receive_eof(Cause::network_error, proto_.role() == protocol::Role::client
                                                   ? "server closed TCP without a close frame"
                                                   : "peer closed TCP without a close frame");
    else
      proto_.receive_eof(Cause::network_error, std::strerror(errno));  // e.g. reset by peer
    break;
  }
}

bool WsStream::receive_tls(std::size_t n) {
  // The session copies the ciphertext, so the same buffer then takes the plaintext.
  const std::span<uint8_t> buf = loop().read_buffer();
  tls_->feed({buf.data(), n});
  while (fd_ >= 0 && !proto_.should_close_transport()) {
    const std::size_t m = tls_->read(buf);
    if (m == 0) break;
    proto_.receive({buf.data(), m});
  }
  if (tls_->failed()) {
    tls_failed();
    return false;
  }
  if (tls_->peer_closed()) {
    // close_notify: an orderly TLS end; without a close frame first it is still abnormal.
    proto_.receive_eof(Cause::network_error, "TLS close_notify without a close frame");
    return false;
  }
  return true;
}

void WsStream::tls_failed() {
  // Before the upgrade completed it is the handshake that failed (certificate, protocol
  // version, no shared cipher); later it is the network (a corrupt or truncated record).
  const bool opening = proto_.state() == protocol::State::connecting;
  const std::string why = "TLS: " + tls_->error();
  // Best effort: the alert OpenSSL queued tells the peer why.
  bool blocked = false;
  const auto alert = tls_->pending();
  if (!alert.empty()) write_some(alert, blocked);
  proto_.receive_eof(opening ? Cause::handshake_failed : Cause::network_error, why);
  detach();
}

ssize_t WsStream::send_counted(std::span<const uint8_t> bytes) {
  ssize_t n;
  do n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    traffic_.add(TrafficCounters::bytes_sent, static_cast<uint64_t>(n));
    config().counters->bytes_sent.add(static_cast<uint64_t>(n));
  }
  return n;
}

long WsStream::write_some(std::span<const uint8_t> bytes, bool& blocked) {
  const ssize_t n = send_counted(bytes);
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    blocked = true;
    return 0;
  }
  proto_.receive_eof(Cause::network_error, std::strerror(errno));
  detach();
  return -1;
}

void WsStream::write_in_place(std::span<const uint8_t> frame) {
  // The frame lies in the loop's read buffer, which the next read reuses: what the socket does
  // not take now is queued as a copy. An error is left to the flush at the end of this I/O
  // callback (which meets it again and closes): detaching here would report the close from
  // inside the application's message callback.
  const ssize_t n = send_counted(frame);
  const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
  if (sent > 0) live_.sent(loop().now());
  if (sent < frame.size()) proto_.queue_frame_tail(frame.subspan(sent));
}

void WsStream::set_blocked(bool blocked) {
  proto_.set_transport_blocked(blocked);
  if (blocked != want_write_) {
    want_write_ = blocked;
    loop().modify(fd_, interest(want_write_), this);
  }
}

void WsStream::flush() {
  if (fd_ < 0 || connecting_) return;
  if (tls_) {
    flush_tls();
    return;
  }
  const auto& out = proto_.out();
  // Nothing queued, not waiting to write, nothing to report (after a zero-copy reply, say).
  if (out.empty() && !want_write_ && queue_reported_ == 0 && !proto_.should_close_transport())
    return;
  bool wrote = false, blocked = false;
  while (!out.empty()) {
    long n = write_some({out.data(), out.size()}, blocked);
    if (n < 0) return;  // detached
    if (blocked) break;
    proto_.consume_out(static_cast<std::size_t>(n));
    wrote = true;
  }
  if (wrote) live_.sent(loop().now());
  set_blocked(blocked);
  report_queue();
  if (!blocked && proto_.should_close_transport()) detach();
}

void WsStream::flush_tls() {
  // Encrypt only what the socket can take soon: queued data stays in the protocol's buffer
  // (where pings can still overtake it under backpressure, and buffered() sees it), and the
  // session holds at most one chunk of ciphertext.
  constexpr std::size_t kChunk = 64 * 1024;
  const auto& out = proto_.out();
  bool wrote = false, blocked = false, shut = false;
  for (;;) {
    auto pending = tls_->pending();
    if (!pending.empty()) {
      long n = write_some(pending, blocked);
      if (n < 0) return;
      if (blocked) break;
      tls_->consume(static_cast<std::size_t>(n));
      wrote = true;
      continue;
    }
    if (!out.empty()) {
      const std::size_t take = std::min(out.size(), kChunk);
      if (!tls_->write({out.data(), take})) {
        tls_failed();
        return;
      }
      proto_.consume_out(take);
      continue;
    }
    if (proto_.should_close_transport() && !shut) {
      shut = true;
      tls_->shutdown();  // close_notify, then the TCP close
      continue;
    }
    break;
  }
  if (wrote) live_.sent(loop().now());
  set_blocked(blocked);
  report_queue();
  if (!blocked && proto_.should_close_transport()) detach();
}

void WsStream::detach() {
  if (fd_ < 0) return;
  loop().timers().cancel(timer());
  loop().remove(fd_);
  loop::close_fd(fd_);
  fd_ = -1;
  report_queue();  // nothing queued on a closed socket counts any more
  live_.done();
  stream_detached();
}

void WsStream::on_open() {
  live_.opened(loop().now());
  was_open_ = true;
  handshake_us_ = static_cast<uint32_t>(std::min<int64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(loop().now() - attached_at_).count(),
      UINT32_MAX));
  config().counters->opened.add();
  rearm();
  stream_open();
}

void WsStream::on_message(codec::Opcode type, std::span<const uint8_t> data) {
  live_.message(loop().now());
  traffic_.add(TrafficCounters::messages_received, 1);
  config().counters->messages_received.add();
  stream_message(type, data);
}

void WsStream::count_control() {
  // A ping flood costs us a pong each: past the budget the peer is misbehaving (policy, 1008).
  // Failed rather than closed: waiting for the flooder's close frame would keep answering it.
  if (!control_budget_.take(config().control_limit, loop().now()) &&
      proto_.state() == protocol::State::open)
    proto_.fail(1008, "too many control frames", Cause::protocol_error);
}

void WsStream::on_ping(std::span<const uint8_t>) { count_control(); }

void WsStream::on_pong(std::span<const uint8_t> payload) {
  count_control();
  if (auto rtt = liveness::rtt_from_pong(payload, loop().now())) {
    rtt_us_ = static_cast<uint32_t>(std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(*rtt).count(), 0, kNoRtt - 1));
    config().counters->rtt.observe(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(*rtt, loop::Duration::zero()))
            .count()));
    stream_rtt(*rtt);
  }
}

void WsStream::on_close(const CloseInfo& info) {
  live_.done();
  loop().timers().cancel(timer());
  if (was_open_)
    config().counters->closed_with(info.cause, info.code);
  else if (const int status = proto_.rejected_status())
    config().counters->rejected_handshakes[metrics::status_bucket(status)].add();
  else
    config().counters->failed_handshakes[static_cast<std::size_t>(info.cause)].add();
  stream_close(info);
}

void WsStream::arm_no_later_than(loop::TimePoint t) {
  if (fd_ < 0 || t == loop::TimePoint::max()) return;
  if (loop().timers().fires_after(timer(), t)) loop().timers().schedule(timer(), t);
}

void WsStream::rearm() {
  const auto deadline = std::min(live_.next_deadline(config().liveness), stream_deadline());
  if (deadline == loop::TimePoint::max())
    loop().timers().cancel(timer());
  else
    loop().timers().schedule(timer(), deadline);
}

void WsStream::on_timer() {
  if (fd_ < 0) return;
  const auto now = loop().now();
  if (now >= stream_deadline()) {
    stream_timer(now);
    if (fd_ < 0) return;
    if (!in_io_) stream_schedule_flush();
  }
  for (int guard = 0; guard < 4; ++guard) {
    const auto due = live_.next_deadline(config().liveness);
    switch (live_.check(config().liveness, now)) {
      case liveness::Action::none:
        rearm();
        return;
      case liveness::Action::send_ping:
        // Written now rather than with the loop's deferred flushes: at a high ping rate a
        // wheel tick fires hundreds of timers, and each deferred ping would hold a send buffer
        // from the pool until the end of the iteration (one send either way).
        ping_now(due, /*write_now=*/true);
        if (fd_ < 0) return;
        continue;
      case liveness::Action::heartbeat_timeout:
        abort(Cause::heartbeat_timeout, "heartbeat timeout after " +
                                            std::to_string(whole_ms(now - live_.last_received())) +
                                            " ms");
        return;
      case liveness::Action::handshake_timeout:
        abort(Cause::handshake_timeout,
              "opening handshake not completed within " +
                  std::to_string(whole_ms(config().liveness.handshake_timeout)) + " ms");
        return;
      case liveness::Action::idle_timeout:
        close_stream(1001, "idle timeout", Cause::idle_timeout);
        flush();
        if (fd_ < 0) return;
        continue;
      case liveness::Action::close_timeout:
        abort(proto_.close_cause(), "closing handshake not answered within " +
                                        std::to_string(whole_ms(config().liveness.close_timeout)) +
                                        " ms");
        return;
    }
  }
  rearm();
}

}  // namespace tether::detail
