#include "metrics/counters.hpp"

namespace tether::metrics {

std::string_view code_label(std::size_t bucket) {
  static constexpr std::string_view labels[code_bucket_count] = {
      "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009",
      "1010", "1011", "1012", "1013", "1014", "1015", "3xxx", "4xxx", "other"};
  return bucket < code_bucket_count ? labels[bucket] : "other";
}

std::string_view status_label(std::size_t bucket) {
  static constexpr std::string_view labels[status_bucket_count] = {"400", "403", "405", "426",
                                                                   "431", "503", "505", "other"};
  return bucket < status_bucket_count ? labels[bucket] : "other";
}

std::string_view drop_reason_label(DropReason r) {
  return r == DropReason::slow_subscriber ? "slow_subscriber" : "send_buffer_full";
}

std::string_view rtt_bound_label(std::size_t i) {
  static constexpr std::string_view labels[rtt_bucket_count] = {
      "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
      "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
  return i < rtt_bucket_count ? labels[i] : "+Inf";
}

void Snapshot::add(const StreamCounters& c) {
  opened += c.opened.get();
  for (std::size_t i = 0; i < cause_count; ++i) {
    for (std::size_t j = 0; j < code_bucket_count; ++j) closed[i][j] += c.closed[i][j].get();
    failed_handshakes[i] += c.failed_handshakes[i].get();
  }
  for (std::size_t i = 0; i < status_bucket_count; ++i)
    rejected_handshakes[i] += c.rejected_handshakes[i].get();
  bytes_received += c.bytes_received.get();
  bytes_sent += c.bytes_sent.get();
  messages_received += c.messages_received.get();
  messages_sent += c.messages_sent.get();
  for (std::size_t i = 0; i <= rtt_bucket_count; ++i) rtt_buckets[i] += c.rtt.bucket(i);
  rtt_sum_ns += c.rtt.sum_ns();
  for (std::size_t i = 0; i < drop_reason_count; ++i) dropped[i] += c.dropped[i].get();
  send_queue_bytes += c.send_queue_bytes.get();
  resumes += c.resumes.get();
  resume_replays += c.resume_replays.get();
  resume_failures += c.resume_failures.get();
}

uint64_t Snapshot::closed_by_cause(Cause cause) const {
  uint64_t n = 0;
  for (auto v : closed[static_cast<std::size_t>(cause)]) n += v;
  return n;
}

uint64_t Snapshot::closed_total() const {
  uint64_t n = 0;
  for (std::size_t i = 0; i < cause_count; ++i) n += closed_by_cause(static_cast<Cause>(i));
  return n;
}

uint64_t Snapshot::open() const {
  const uint64_t c = closed_total();
  return opened > c ? opened - c : 0;
}

StreamCounters& unread_counters() {
  static StreamCounters sink;
  return sink;
}

}  // namespace tether::metrics
