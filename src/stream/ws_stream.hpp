// One WebSocket over one non-blocking socket on one event loop, for either role: the glue
// between the sans-I/O protocol::Connection, liveness::Liveness and the fd. Server connections
// and clients both derive from it, so reading, corked writing, heartbeats and deadlines exist once.
//
// Timers: one intrusive Timer per stream, armed for Liveness::next_deadline(). Traffic only
// updates timestamps; when the timer fires it asks Liveness what is due and re-arms itself.
#pragma once
#include <sys/types.h>  // ssize_t

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "limits/token_bucket.hpp"
#include "liveness/liveness.hpp"
#include "loop/event_loop.hpp"
#include "metrics/counters.hpp"
#include "protocol/connection.hpp"
#include "tether/message.hpp"
#include "tether/metrics.hpp"
#include "tls/tls.hpp"

namespace tether::detail {

struct StreamConfig {
  protocol::ConnectionConfig protocol;
  liveness::Config liveness;
  std::size_t send_buffer_limit = 1u << 20;
  std::size_t send_buffer_max = 16u << 20;
  loop::Duration tcp_user_timeout{};  // TCP_USER_TIMEOUT; 0: kernel default
  bool tcp_keepalive = false;         // SO_KEEPALIVE
  int socket_send_buffer = 0;         // SO_SNDBUF; 0: kernel default
  int socket_receive_buffer = 0;      // SO_RCVBUF; 0: kernel default
  // Pings + pongs the peer may send (server: N per second, burst N); past it: fail 1008.
  // Default: unlimited.
  limits::RateLimit control_limit;
  // send_message past send_buffer_max: close with 1008 (true) or drop the message (false).
  bool close_on_overflow = false;
  // TLS under the protocol (wss://): set = every byte goes through a tls::Session. `tls_host`:
  // the client's SNI / certificate name.
  std::shared_ptr<tls::Context> tls;
  std::string tls_host;
  // Where traffic, opens, closes, RTTs and drops are counted: the loop's (server) or the
  // client's. Must outlive the stream; by default counters nobody reads.
  metrics::StreamCounters* counters = &metrics::unread_counters();
  // The loop every stream using this config runs on (a config is one loop's or one client's):
  // streams reach their loop through it instead of keeping a reference each.
  loop::EventLoop* loop = nullptr;
  // What owns the streams using this config (a server's per-loop context), for the owner's
  // per-message calls: one load from the config instead of a walk through the loop.
  void* owner = nullptr;
};

// Four 48-bit counters in 24 bytes (not 32): up to 2^48 - 1 each (256 TiB, or that many
// messages), where they stop instead of wrapping.
class TrafficCounters {
 public:
  enum Which : uint8_t { bytes_received, bytes_sent, messages_received, messages_sent };
  static constexpr uint64_t kMax = (uint64_t{1} << 48) - 1;
  uint64_t get(Which w) const { return (uint64_t{hi_[w]} << 32) | lo_[w]; }
  void add(Which w, uint64_t n) {
    const uint64_t v = get(w);
    const uint64_t sum = n > kMax - v ? kMax : v + n;
    lo_[w] = static_cast<uint32_t>(sum);
    hi_[w] = static_cast<uint16_t>(sum >> 32);
  }

 private:
  uint32_t lo_[4] = {};
  uint16_t hi_[4] = {};
};

// The stream is its own timer (loop::TimerBase, 32 bytes): one wheel node per connection, no
// callback context. One vtable pointer: protocol::Handler is also the loop's IoHandler.
class WsStream : public protocol::Handler, private loop::TimerBase {
 public:
  // `config` is shared (one per server loop or client), not copied: it must outlive the
  // stream, and its `loop` is the stream's loop (config.protocol.rng: the client's mask keys).
  // Reads go into the loop's shared read buffer (EventLoop::read_buffer()).
  explicit WsStream(const StreamConfig& config);
  explicit WsStream(StreamConfig&&) = delete;
  ~WsStream() override;
  WsStream(const WsStream&) = delete;
  WsStream& operator=(const WsStream&) = delete;

  // Takes the socket. `connecting`: a non-blocking connect is in progress (client).
  std::error_code attach(int fd, bool connecting);

  SendStatus send_message(std::string_view data, MessageType type);
  // Starts the closing handshake; `cause` is what on_close will report.
  void close_stream(uint16_t code, std::string_view reason, Cause cause = Cause::local_close);
  // Ends now: reports `cause` with 1006 and drops the socket.
  void abort(Cause cause, std::string_view why);
  void flush();
  // Sends a heartbeat ping now (its pong yields an RTT sample). false when not open.
  // `write_now`: write it at once instead of with the loop's deferred flushes.
  bool ping_now(loop::TimePoint due = loop::TimePoint::max(), bool write_now = false);
  // An application message was queued by other means (a pre-encoded fan-out frame).
  void note_message_sent() {
    live_.message(loop().now());
    traffic_.add(TrafficCounters::messages_sent, 1);
    config().counters->messages_sent.add();
  }
  // The owner's deadline (stream_deadline) may have moved earlier: re-arm if the timer would
  // fire too late. Costs nothing when it would not.
  void arm_no_later_than(loop::TimePoint t);

  std::size_t buffered() const { return proto_.out().size() + (tls_ ? tls_->pending().size() : 0); }
  std::optional<loop::Duration> last_rtt() const {
    if (rtt_us_ == kNoRtt) return std::nullopt;
    return std::chrono::microseconds(rtt_us_);
  }
  bool attached() const { return fd_ >= 0; }
  bool is_open() const { return proto_.state() == protocol::State::open; }
  protocol::Connection& protocol() { return proto_; }
  const protocol::Connection& protocol() const { return proto_; }
  metrics::StreamCounters& counters() { return *config().counters; }
  // This connection's traffic and timing (tether serve logs them on close).
  ConnectionStats stats() const;

 protected:
  // What the owner (server connection or client) hears about.
  virtual void stream_open() = 0;
  virtual void stream_message(codec::Opcode type, std::span<const uint8_t> data) = 0;
  virtual void stream_close(const CloseInfo& info) = 0;
  virtual void stream_detached() = 0;  // socket closed: no more events; the owner may retire
  virtual void stream_rtt(loop::Duration) {}
  // A send from outside this stream's I/O callback: flush at the end of the loop iteration.
  virtual void stream_schedule_flush() = 0;
  // A deadline of the owner's own (session resume: pending ack, window expiry), served by the
  // same per-stream timer: stream_timer(now) runs once it has come.
  virtual loop::TimePoint stream_deadline() const { return loop::TimePoint::max(); }
  virtual void stream_timer(loop::TimePoint) {}

  loop::EventLoop& loop() const { return *config().loop; }
  // The shared config, found from the protocol's (its first member): no reference of our own.
  const StreamConfig& config() const {
    return *reinterpret_cast<const StreamConfig*>(&proto_.config());
  }

 private:
  // loop::IoHandler
  void on_io(uint32_t events) override;
  // protocol::Handler
  void on_open() override;
  void on_message(codec::Opcode type, std::span<const uint8_t> data) override;
  void on_ping(std::span<const uint8_t> payload) override;
  void on_pong(std::span<const uint8_t> payload) override;
  void count_control();
  void on_close(const CloseInfo& info) override;

  void read_some();
  // TLS: decrypts what recv() put in the read buffer and feeds the protocol. false: stop reading.
  bool receive_tls(std::size_t n);
  void tls_failed();
  // One send(2) (retried on EINTR) of `bytes`, counted in the traffic metrics; send's result.
  ssize_t send_counted(std::span<const uint8_t> bytes);
  // Writes `bytes` to the socket; returns how many were taken, or -1 after detaching on error.
  // Sets blocked when the socket would block.
  long write_some(std::span<const uint8_t> bytes, bool& blocked);
  // Writes a frame made by protocol::Connection::frame_in_place; queues what the socket does not
  // take.
  void write_in_place(std::span<const uint8_t> frame);
  void set_blocked(bool blocked);
  void flush_tls();
  void detach();
  void on_timer();
  static void fire(loop::TimerBase& t) { static_cast<WsStream&>(t).on_timer(); }
  loop::TimerBase& timer() { return *this; }
  void rearm();
  // tether_send_queue_bytes: moves the loop's gauge by this stream's change since last time.
  void report_queue();

  // Laid out to pack: the flags sit in the liveness state's tail padding, the 32-bit fields
  // last so that a derived class's small fields can use what follows them.
  protocol::Connection proto_;
  [[no_unique_address]] liveness::State live_;
  bool connecting_ : 1 = false;
  bool in_io_ : 1 = false;
  bool want_write_ : 1 = false;
  bool was_open_ : 1 = false;  // the upgrade completed (closes are counted apart from failed ones)
  uint32_t ping_seq_ = 0;
  limits::RateState control_budget_;
  std::unique_ptr<tls::Session> tls_;
  // Metrics: config().counters (never null here) is the loop's or client's; this connection's
  // own are the traffic totals, when the socket came, how long the upgrade took, its share of
  // the send-queue gauge.
  TrafficCounters traffic_;
  loop::TimePoint attached_at_{};
  uint32_t queue_reported_ = 0;
  uint32_t handshake_us_ = 0;  // attach to open, in microseconds (bounded by handshake_timeout)
  int fd_ = -1;
  static constexpr uint32_t kNoRtt = UINT32_MAX;
  uint32_t rtt_us_ = kNoRtt;  // the last RTT sample in µs (up to 71 minutes); kNoRtt: none yet
};

}  // namespace tether::detail
