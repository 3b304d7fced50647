#include "tether/client.hpp"

#include <atomic>
#include <deque>
#include <optional>

#include "client/url.hpp"
#include "liveness/backoff.hpp"
#include "loop/event_loop.hpp"
#include "loop/socket.hpp"
#include "metrics/counters.hpp"
#include "resume/client_session.hpp"
#include "resume/frame.hpp"
#include "stream/ws_stream.hpp"

namespace tether {

namespace {
detail::StreamConfig make_config(const ClientOptions& o) {
  detail::StreamConfig c;
  c.protocol.role = protocol::Role::client;
  c.protocol.max_frame = o.max_frame;
  c.protocol.max_message = o.max_message;
  c.protocol.deflate = &o.deflate;  // `o` is the client's own copy: outlives every stream
  c.liveness = {o.ping_interval, o.ping_timeout, o.handshake_timeout, o.idle_timeout,
                o.close_timeout};
  c.send_buffer_limit = o.send_buffer_limit;
  c.send_buffer_max = o.send_buffer_max;
  c.tcp_user_timeout = o.tcp_user_timeout;
  c.tcp_keepalive = o.tcp_keepalive;
  c.socket_send_buffer = o.socket_send_buffer;
  c.socket_receive_buffer = o.socket_receive_buffer;
  return c;
}

bool has_crlf(std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; }
}  // namespace

struct Client::Impl {
  struct Stream;

  Impl(Loop* shared, ClientOptions o)
      : owned(shared ? nullptr : std::make_unique<Loop>()),
        loop(shared ? shared->native() : owned->native()),
        opts(std::move(o)),
        session(resume_config(opts)),
        backoff({opts.backoff_min, opts.backoff_max, opts.max_attempts, opts.backoff_reset_after}) {
    urls.push_back(opts.url);
    for (auto& u : opts.fallback_urls) urls.push_back(u);
    reconnect_timer.set_callback(
        [](loop::Timer&, void* self) { static_cast<Impl*>(self)->start(); }, this);
  }

  std::unique_ptr<Loop> owned;
  loop::EventLoop& loop;
  ClientOptions opts;
  // Client::metrics(): written on the loop thread only, read from any thread. Before `stream`,
  // whose destructor still touches them.
  metrics::StreamCounters counters;
  metrics::Counter reconnects, offline_dropped;
  std::atomic<int64_t> last_rtt_ns{-1};
  std::function<void()> on_open_fn;
  std::function<void(std::string_view, MessageType)> on_message_fn;
  std::function<void(const CloseInfo&)> on_close_fn;
  std::function<void(std::string_view)> on_error_fn;
  std::function<void(std::chrono::nanoseconds)> on_rtt_fn;
  std::function<void(unsigned, std::chrono::milliseconds)> on_reconnecting_fn;
  std::function<void(uint64_t)> on_resumed_fn;
  std::function<void(std::string_view)> on_resume_failed_fn;

  static resume::Config resume_config(const ClientOptions& o) {
    // The session window is the offline queue in resume mode: at least the plain queue's
    // bounds, and the resume defaults (10,000 messages / 16 MiB) when those are larger.
    resume::Config c;
    c.max_messages = std::max(c.max_messages, o.offline_queue_max_messages);
    c.max_bytes = std::max(c.max_bytes, o.offline_queue_max_bytes);
    return c;
  }
  resume::ClientSession session;  // lives across reconnects
  bool resume_active = false;     // this connection negotiated tether.resume.v1
  void resume_frame(MessageType type, std::span<const uint8_t> bytes);
  void maybe_close_after_acks();

  liveness::Backoff backoff;
  std::vector<std::string> urls;
  std::size_t url_index = 0;
  unsigned attempt_no = 1;
  loop::Timer reconnect_timer;
  std::shared_ptr<tls::Context> tls_context;  // wss://, made on the first secure attempt

  protocol::SystemRandom rng;
  detail::StreamConfig stream_config;  // the current stream's (streams refer to it, never copy)
  std::unique_ptr<Stream> stream;
  std::atomic<State> state{State::idle};
  bool close_requested = false;
  uint16_t close_code = 1000;
  std::string close_reason;
  bool flush_scheduled = false;
  struct Pending {
    std::string data;
    MessageType type;
  };
  std::deque<Pending> pending;
  std::size_t pending_bytes = 0;

  void start();
  // A connection (or an attempt) ended: report it, then reconnect or finish.
  void closed(const CloseInfo& info, bool may_reconnect = true);
  // An attempt that ended before a stream could report it (bad URL, connect() failed at once).
  void attempt_failed(const CloseInfo& info, bool may_reconnect = true) {
    counters.failed_handshakes[static_cast<std::size_t>(info.cause)].add();
    closed(info, may_reconnect);
  }
  void finish() {
    state = State::closed;
    loop.timers().cancel(reconnect_timer);
    if (owned) loop.stop();
  }
  SendStatus do_send(std::string_view data, MessageType type);
  SendStatus do_send_inner(std::string_view data, MessageType type);
  bool app_closed = false;  // our close frame went out: the end of this client, however it ends
  void do_close(uint16_t code, std::string_view reason);
};

struct Client::Impl::Stream final : detail::WsStream {
  Stream(Impl& c, const detail::StreamConfig& cfg) : WsStream(cfg), client(c) {}
  Impl& client;

  void stream_open() override {
    client.state = State::open;
    client.backoff.opened(loop().now());
    client.resume_active = client.opts.resume && protocol().subprotocol() == resume::subprotocol;
    if (client.opts.resume && !client.resume_active) {
      client.counters.resume_failures.add();
      if (client.on_resume_failed_fn)
        client.on_resume_failed_fn("server does not speak tether.resume.v1");
    }
    if (client.on_open_fn) client.on_open_fn();
    if (client.resume_active) {
      // The hello; sends made meanwhile wait in the session's window, not the plain queue.
      Impl* c = &client;
      client.session.open(
          loop().now(), [c](MessageType t, std::span<const uint8_t> b) { c->resume_frame(t, b); });
      arm_no_later_than(client.session.next_deadline());
      return;
    }
    // Sends made while connecting go out first, in order, then a close asked for meanwhile.
    while (!client.pending.empty() && is_open()) {
      auto& p = client.pending.front();
      send_message(p.data, p.type);
      client.pending_bytes -= p.data.size();
      client.pending.pop_front();
    }
    if (client.close_requested) {
      client.close_requested = false;
      client.do_close(client.close_code, client.close_reason);
    }
  }
  void deliver(MessageType type, std::span<const uint8_t> data) {
    if (client.on_message_fn)
      client.on_message_fn({reinterpret_cast<const char*>(data.data()), data.size()}, type);
  }
  void stream_message(codec::Opcode op, std::span<const uint8_t> data) override {
    const auto type = op == codec::Opcode::text ? MessageType::text : MessageType::binary;
    if (!client.resume_active) return deliver(type, data);
    Impl* c = &client;
    auto r = client.session.receive(
        type, data, loop().now(),
        [c](MessageType t, std::span<const uint8_t> b) { c->resume_frame(t, b); });
    switch (r.kind) {
      case resume::Received::Kind::deliver:
        deliver(r.type, r.payload);
        break;
      case resume::Received::Kind::welcome:
        if (r.outcome == resume::Received::Outcome::resumed) {
          client.counters.resumes.add();
          client.counters.resume_replays.add(r.replayed);
          if (client.on_resumed_fn) client.on_resumed_fn(r.replayed);
        } else if (r.outcome == resume::Received::Outcome::resume_failed) {
          client.counters.resume_failures.add();
          if (client.on_resume_failed_fn) client.on_resume_failed_fn(r.reason);
        }
        break;
      case resume::Received::Kind::error:
        client.session.abandon();
        close_stream(resume::close_code(r.error), r.message, Cause::protocol_error);
        return;
      default:
        break;
    }
    arm_no_later_than(client.session.next_deadline());
    client.maybe_close_after_acks();
  }
  void stream_close(const CloseInfo& info) override {
    if (client.resume_active) {
      if (info.code == 1000 && info.was_clean)
        client.session.end();
      else if (info.code == 1002)
        client.session.abandon();
      else
        client.session.disconnected(loop().now());
      client.resume_active = false;
    }
    client.closed(info);
  }
  loop::TimePoint stream_deadline() const override {
    return client.resume_active ? client.session.next_deadline() : loop::TimePoint::max();
  }
  void stream_timer(loop::TimePoint now) override {
    if (!client.resume_active) return;
    Impl* c = &client;
    client.session.on_timer(
        now, [c](MessageType t, std::span<const uint8_t> b) { c->resume_frame(t, b); });
  }
  void stream_detached() override {}
  void stream_rtt(loop::Duration rtt) override {
    client.last_rtt_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(rtt).count(),
                             std::memory_order_relaxed);
    if (client.on_rtt_fn) client.on_rtt_fn(rtt);
  }
  void stream_schedule_flush() override {
    if (client.flush_scheduled) return;
    client.flush_scheduled = true;
    Impl* c = &client;
    loop().defer([c] {
      c->flush_scheduled = false;
      if (c->stream) c->stream->flush();
    });
  }
};

void Client::Impl::start() {
  if (state == State::closed) {
    // connect() again after the end: a new run of attempts.
    app_closed = false;
    close_requested = false;
    attempt_no = 1;
  } else if (state != State::idle && state != State::reconnecting) {
    return;
  }
  state = State::connecting;
  std::string err;
  const std::string& target = urls[url_index];
  auto url = detail::parse_ws_url(target, err);
  if (!url) return attempt_failed({1006, target + ": " + err, false, Cause::connect_failed}, false);
  auto config = make_config(opts);
  config.counters = &counters;
  config.protocol.pools = &loop.buffer_pools();
  if (url->secure) {
    // One TLS context for all attempts (it holds the trust store); a bad CA file is a local
    // configuration error, not something a reconnect would fix.
    if (!tls_context) {
      tls_context = tls::Context::client(opts.tls_ca_file, opts.tls_verify, err);
      if (!tls_context)
        return attempt_failed({1006, "TLS: " + err, false, Cause::connect_failed}, false);
    }
    config.tls = tls_context;
    config.tls_host = url->host;
  }
  // Option strings go into the request verbatim: refuse header injection (RFC 9112 §5).
  bool injected = has_crlf(opts.origin);
  for (auto& [k, v] : opts.headers) injected = injected || has_crlf(k) || has_crlf(v) || k.empty();
  for (auto& p : opts.subprotocols) injected = injected || has_crlf(p) || p.empty();
  if (injected)
    return attempt_failed(
        {1006, "CR/LF or empty name in client handshake options", false, Cause::connect_failed},
        false);
  std::error_code ec;
  int fd = loop::connect_tcp(url->host, url->port, ec);
  if (fd < 0)
    return attempt_failed({1006, "connect to " + url->host_header() + " failed: " + ec.message(),
                           false, Cause::connect_failed});
  stream.reset();  // the old stream refers to stream_config
  stream_config = std::move(config);
  stream_config.loop = &loop;
  stream_config.protocol.rng = &rng;
  stream = std::make_unique<Stream>(*this, stream_config);
  protocol::ClientHandshakeRequest req;
  req.host = url->host_header();
  req.target = url->target;
  uint8_t key[16];
  rng.fill(key);
  req.key = protocol::make_client_key(std::span<const uint8_t, 16>(key, 16));
  req.subprotocols = opts.subprotocols;
  if (opts.resume) req.subprotocols.push_back(std::string(resume::subprotocol));
  req.origin = opts.origin;
  req.extra_headers = opts.headers;
  stream->protocol().start_client(std::move(req));
  if (auto e = stream->attach(fd, true))
    attempt_failed({1006, "epoll: " + e.message(), false, Cause::connect_failed});
}

void Client::Impl::closed(const CloseInfo& info, bool may_reconnect) {
  backoff.closed(loop.now());
  // Decide first, so that the application's on_close already sees `reconnecting` (and a send()
  // from it is queued for the next connection rather than dropped).
  std::optional<loop::Duration> delay;
  // Once our own close went out the client is done, even if the closing handshake was cut.
  if (may_reconnect && opts.reconnect && !app_closed &&
      (opts.should_reconnect ? opts.should_reconnect(info)
                             : liveness::default_should_reconnect(info))) {
    uint64_t bits;
    rng.fill({reinterpret_cast<uint8_t*>(&bits), sizeof bits});
    // A restarting server may say when to come back (1012 "reconnect in N ms"): honour it.
    auto suggested = liveness::suggested_reconnect_delay(info.code, info.reason);
    delay = suggested ? backoff.suggested_delay(*suggested, bits) : backoff.next_delay(bits);
  }
  state = delay ? State::reconnecting : State::closed;
  if (on_close_fn) on_close_fn(info);
  if (!delay) return finish();
  if (state != State::reconnecting) return;  // the callback closed or reconnected already
  attempt_no = backoff.attempt() + 1;
  url_index = (url_index + 1) % urls.size();
  reconnects.add();
  if (on_reconnecting_fn)
    on_reconnecting_fn(attempt_no, std::chrono::ceil<std::chrono::milliseconds>(*delay));
  if (state == State::reconnecting) loop.timers().schedule(reconnect_timer, loop.now() + *delay);
}

void Client::Impl::resume_frame(MessageType type, std::span<const uint8_t> bytes) {
  if (!stream || !stream->is_open()) return;
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // Never leave a hole in the numbering: if the frame cannot be queued, drop the connection and
  // let the resume replay it from the window.
  if (stream->send_message(view, type) == SendStatus::dropped)
    stream->abort(Cause::network_error, "send buffer full; reconnecting to resume");
}

// EOF / close() in resume mode waits until the server has acknowledged everything we sent.
void Client::Impl::maybe_close_after_acks() {
  if (!close_requested || !resume_active || !stream || !stream->is_open()) return;
  if (session.state() != resume::ClientSession::State::established) return;
  if (!session.endpoint().window().empty()) return;
  close_requested = false;
  state = State::closing;
  app_closed = true;
  stream->close_stream(close_code, close_reason);
}

SendStatus Client::Impl::do_send(std::string_view data, MessageType type) {
  SendStatus st = do_send_inner(data, type);
  if (st == SendStatus::dropped && on_error_fn)
    on_error_fn(state == State::closing || state == State::closed || close_requested
                    ? "message dropped: the connection is closing"
                    : "message dropped: offline queue full");
  return st;
}

SendStatus Client::Impl::do_send_inner(std::string_view data, MessageType type) {
  if (opts.resume) {
    // Every message is numbered and kept until acknowledged, connected or not: the session's
    // window is the offline queue.
    if (state == State::closing || state == State::closed || close_requested)
      return SendStatus::dropped;
    // Past its bounds the window forces out the oldest message; the next resume then fails
    // explicitly ("replay window exceeded (client)"), never silently.
    Impl* c = this;
    session.send(type, protocol::Connection::as_bytes(data), loop.now(),
                 [c](MessageType t, std::span<const uint8_t> b) { c->resume_frame(t, b); });
    if (stream && resume_active) stream->arm_no_later_than(session.next_deadline());
    return SendStatus::success;
  }
  if (state == State::open && stream && stream->is_open()) return stream->send_message(data, type);
  if (state == State::closing || state == State::closed || close_requested)
    return SendStatus::dropped;
  while (opts.offline_queue_overflow == ClientOptions::QueueOverflow::drop_oldest &&
         !pending.empty() &&
         (pending.size() >= opts.offline_queue_max_messages ||
          pending_bytes + data.size() > opts.offline_queue_max_bytes)) {
    pending_bytes -= pending.front().data.size();
    pending.pop_front();
    offline_dropped.add();
  }
  if (pending.size() >= opts.offline_queue_max_messages ||
      pending_bytes + data.size() > opts.offline_queue_max_bytes) {
    offline_dropped.add();
    return SendStatus::dropped;
  }
  pending.push_back({std::string(data), type});
  pending_bytes += data.size();
  return SendStatus::success;
}

void Client::Impl::do_close(uint16_t code, std::string_view reason) {
  if (opts.resume && state != State::closed &&
      !(state == State::reconnecting && session.endpoint().window().empty())) {
    close_requested = true;  // once the server has acknowledged everything (or after reconnects)
    close_code = code;
    close_reason = std::string(reason);
    maybe_close_after_acks();
    return;
  }
  if (state == State::open && stream) {
    state = State::closing;
    app_closed = true;
    stream->close_stream(code, reason);
  } else if (state == State::reconnecting && pending.empty()) {
    finish();  // nothing left to deliver: stop trying
  } else if (state == State::connecting || state == State::idle || state == State::reconnecting) {
    close_requested = true;  // after the queued sends, once open
    close_code = code;
    close_reason = std::string(reason);
  }
}

Client::Client(ClientOptions options)
    : impl_(std::make_unique<Impl>(nullptr, std::move(options))) {}
Client::Client(Loop& loop, ClientOptions options)
    : impl_(std::make_unique<Impl>(&loop, std::move(options))) {}
Client::~Client() = default;

void Client::on_open(std::function<void()> fn) { impl_->on_open_fn = std::move(fn); }
void Client::on_message(std::function<void(std::string_view, MessageType)> fn) {
  impl_->on_message_fn = std::move(fn);
}
void Client::on_close(std::function<void(const CloseInfo&)> fn) {
  impl_->on_close_fn = std::move(fn);
}
void Client::on_error(std::function<void(std::string_view)> fn) {
  impl_->on_error_fn = std::move(fn);
}
void Client::on_rtt(std::function<void(std::chrono::nanoseconds)> fn) {
  impl_->on_rtt_fn = std::move(fn);
}
void Client::on_resumed(std::function<void(uint64_t)> fn) { impl_->on_resumed_fn = std::move(fn); }
void Client::on_resume_failed(std::function<void(std::string_view)> fn) {
  impl_->on_resume_failed_fn = std::move(fn);
}
void Client::on_reconnecting(std::function<void(unsigned, std::chrono::milliseconds)> fn) {
  impl_->on_reconnecting_fn = std::move(fn);
}
unsigned Client::attempt() const { return impl_->attempt_no; }
std::size_t Client::pending_messages() const {
  return impl_->opts.resume ? impl_->session.endpoint().window().size() : impl_->pending.size();
}
const std::string& Client::url() const { return impl_->urls[impl_->url_index]; }

void Client::connect() {
  // Always through the loop's queue, even on its own thread: connect() from inside a callback
  // of the previous connection must not replace that connection while it is still on the stack.
  auto* i = impl_.get();
  impl_->loop.post([i] { i->start(); });
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

void Client::ping() {
  auto* i = impl_.get();
  auto fn = [i] {
    if (i->stream) i->stream->ping_now();
  };
  if (impl_->loop.in_loop_thread())
    fn();
  else
    impl_->loop.post(fn);
}

void Client::run() {
  if (impl_->owned) impl_->loop.run();
}

Client::State Client::state() const { return impl_->state.load(); }

ClientMetrics Client::metrics() const {
  const Impl& i = *impl_;
  metrics::Snapshot s;
  s.add(i.counters);
  ClientMetrics m;
  m.connections_opened = s.opened;
  m.reconnects = i.reconnects.get();
  for (std::size_t c = 0; c < cause_count; ++c)
    m.closes_by_cause[c] = s.closed_by_cause(static_cast<Cause>(c)) + s.failed_handshakes[c];
  m.heartbeat_timeouts = m.closes(Cause::heartbeat_timeout);
  m.messages_received = s.messages_received;
  m.messages_sent = s.messages_sent;
  m.bytes_received = s.bytes_received;
  m.bytes_sent = s.bytes_sent;
  m.dropped_send_buffer_full =
      s.dropped[static_cast<std::size_t>(metrics::DropReason::send_buffer_full)];
  m.dropped_offline_queue_full = i.offline_dropped.get();
  m.resumes = s.resumes;
  m.resume_replays = s.resume_replays;
  m.resume_failures = s.resume_failures;
  for (auto b : s.rtt_buckets) m.rtt_samples += b;
  m.rtt_sum = std::chrono::nanoseconds(s.rtt_sum_ns);
  const int64_t last = i.last_rtt_ns.load(std::memory_order_relaxed);
  if (last >= 0) m.last_rtt = std::chrono::nanoseconds(last);
  return m;
}
std::size_t Client::buffered_amount() const {
  return impl_->stream ? impl_->stream->buffered() : 0;
}
std::optional<std::chrono::nanoseconds> Client::rtt() const {
  return impl_->stream ? impl_->stream->last_rtt() : std::nullopt;
}

}  // namespace tether
