// The counters behind /metrics (Prometheus) and ClientMetrics. One StreamCounters per event
// loop (server: LoopContext owns it) or per client; the loop thread is its only writer, so an
// increment is a relaxed load and store of the same atomic: a plain add on x86 and ARM (no
// lock prefix, no fence), and a scrape from another thread still reads without a data race.
// No lock, no allocation: every label set is a fixed array slot. Loops are summed at scrape time
// (Snapshot), and rendered by exposition.hpp.
//
// Label cardinality is bounded by construction: cause (9 values) x close code (19 buckets: the
// registered 1000-1015 one by one, then 3000-3999, 4000-4999, and anything else) for closes,
// 8 HTTP statuses for rejected handshakes, 2 drop reasons, 14 RTT buckets.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tether/close_info.hpp"

namespace tether::metrics {

// A monotonic counter with one writer thread; any thread may read it.
class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A gauge with one writer thread, moved by deltas. Unsigned arithmetic wraps, so a loop's value
// or the sum over loops is exact as long as the true total is not negative.
class Gauge {
 public:
  void move(uint64_t from, uint64_t to) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + (to - from), std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// ---- close codes: 1000..1015 each (RFC 6455 §7.4.1 and the IANA registry), then classes.
inline constexpr std::size_t code_bucket_count = 19;
constexpr std::size_t code_bucket(uint16_t code) {
  if (code >= 1000 && code <= 1015) return code - 1000u;
  if (code >= 3000 && code <= 3999) return 16;  // registered with IANA (libraries, frameworks)
  if (code >= 4000 && code <= 4999) return 17;  // private use (applications)
  return 18;
}
// "1000".."1015", "3xxx", "4xxx", "other".
std::string_view code_label(std::size_t bucket);

// ---- HTTP statuses of refused upgrades (the server's answer instead of 101).
inline constexpr std::array<uint16_t, 7> rejection_statuses = {400, 403, 405, 426, 431, 503, 505};
inline constexpr std::size_t status_bucket_count = rejection_statuses.size() + 1;  // + "other"
constexpr std::size_t status_bucket(int status) {
  for (std::size_t i = 0; i < rejection_statuses.size(); ++i)
    if (rejection_statuses[i] == status) return i;
  return rejection_statuses.size();
}
std::string_view status_label(std::size_t bucket);  // "400" ... "505", "other"

// ---- messages not sent.
enum class DropReason : uint8_t {
  slow_subscriber,   // fan-out skipped a subscriber past send_buffer_limit (SlowSubscriber::drop)
  send_buffer_full,  // send() past send_buffer_max (the connection is closed or the message
                     // dropped)
};
inline constexpr std::size_t drop_reason_count = 2;
std::string_view drop_reason_label(DropReason r);

// ---- heartbeat round trip: Prometheus' default buckets, extended down to 0.5 ms for LANs.
inline constexpr std::size_t rtt_bucket_count = 14;
inline constexpr std::array<uint64_t, rtt_bucket_count> rtt_bounds_ns = {
    500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
// The `le` label of each bound, in seconds ("0.0005" ... "10").
std::string_view rtt_bound_label(std::size_t i);

// Per-bucket (not cumulative) counts, the last one past every bound (+Inf).
class Histogram {
 public:
  void observe(uint64_t ns) noexcept {
    std::size_t i = 0;
    while (i < rtt_bucket_count && ns > rtt_bounds_ns[i]) ++i;
    buckets_[i].add();
    sum_ns_.add(ns);
  }
  uint64_t bucket(std::size_t i) const { return buckets_[i].get(); }
  uint64_t sum_ns() const { return sum_ns_.get(); }

 private:
  std::array<Counter, rtt_bucket_count + 1> buckets_;
  Counter sum_ns_;
};

// Everything counted for the connections of one event loop (or one client). ~1.8 KiB.
struct StreamCounters {
  Counter opened;  // upgrades completed
  // Connections that had opened, when they ended: [cause][code_bucket].
  std::array<std::array<Counter, code_bucket_count>, cause_count> closed;
  // Connections that ended before the upgrade completed without an HTTP error answer (handshake
  // timeout, TLS failure, peer gone, shutdown; client: connect and handshake failures), by cause.
  std::array<Counter, cause_count> failed_handshakes;
  // Upgrades the server refused with an HTTP status (400, 403, 431, 503...), by status bucket.
  std::array<Counter, status_bucket_count> rejected_handshakes;
  Counter bytes_received, bytes_sent;        // socket bytes (handshakes, headers, TLS included)
  Counter messages_received, messages_sent;  // WebSocket data messages
  Histogram rtt;
  std::array<Counter, drop_reason_count> dropped;
  Gauge send_queue_bytes;  // bytes queued on the loop's connections, as of their last flush
  Counter resumes, resume_replays, resume_failures;  // tether.resume.v1 hellos

  void closed_with(Cause cause, uint16_t code) {
    closed[static_cast<std::size_t>(cause)][code_bucket(code)].add();
  }
  void drop(DropReason r) { dropped[static_cast<std::size_t>(r)].add(); }
};

// Plain values summed over loops at scrape time: the input of render() (exposition.hpp).
struct Snapshot {
  uint64_t opened = 0;
  std::array<std::array<uint64_t, code_bucket_count>, cause_count> closed{};
  std::array<uint64_t, cause_count> failed_handshakes{};
  std::array<uint64_t, status_bucket_count> rejected_handshakes{};
  uint64_t bytes_received = 0, bytes_sent = 0;
  uint64_t messages_received = 0, messages_sent = 0;
  std::array<uint64_t, rtt_bucket_count + 1> rtt_buckets{};  // per bucket, last = +Inf
  uint64_t rtt_sum_ns = 0;
  std::array<uint64_t, drop_reason_count> dropped{};
  uint64_t send_queue_bytes = 0;
  uint64_t resumes = 0, resume_replays = 0, resume_failures = 0;
  // The Redis link (server-wide, ServerImpl::redis_up etc.): -1 = not configured, and then no
  // Redis families are exported.
  int redis_up = -1;
  uint64_t redis_reconnects = 0, redis_publish_failures = 0;

  void add(const StreamCounters& c);
  uint64_t closed_total() const;
  uint64_t closed_by_cause(Cause cause) const;
  // opened - closed, never negative (the two are read at slightly different moments).
  uint64_t open() const;
};

// Counters nobody reads: where streams made without counters of their own count.
StreamCounters& unread_counters();

}  // namespace tether::metrics
