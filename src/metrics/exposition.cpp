#include "metrics/exposition.hpp"

#include <charconv>
#include <cmath>

namespace tether::metrics {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  return std::string(buf, r.ptr);
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void TextWriter::begin_sample(std::string_view name, std::initializer_list<Label> labels) {
  out_ += name;
  if (labels.size() != 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      out_ += escape_label_value(v);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels,
                        uint64_t value) {
  begin_sample(name, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
  begin_sample(name, labels);
  out_ += format_value(value);
  out_ += '\n';
}

namespace {
void counter(TextWriter& w, std::string_view name, std::string_view help, uint64_t v) {
  w.family(name, "counter", help);
  w.sample(name, {}, v);
}
}  // namespace

std::string render(const Snapshot& s, std::string_view version) {
  std::string out;
  out.reserve(4096);
  TextWriter w(out);

  w.family("tether_build_info", "gauge", "The tether version serving these metrics (always 1).");
  w.sample("tether_build_info", {{"version", version}}, uint64_t{1});

  w.family("tether_connections_open", "gauge",
           "WebSocket connections open now (upgrade completed, not yet closed).");
  w.sample("tether_connections_open", {}, s.open());
  counter(w, "tether_connections_opened_total", "WebSocket upgrades completed.", s.opened);

  if (s.closed_total() > 0) {
    w.family("tether_connections_closed_total", "counter",
             "Open WebSocket connections that ended, by tether cause and close code (1000-1015 "
             "each; 3xxx, 4xxx and other as classes).");
    for (std::size_t c = 0; c < cause_count; ++c)
      for (std::size_t b = 0; b < code_bucket_count; ++b)
        if (s.closed[c][b] > 0)
          w.sample("tether_connections_closed_total",
                   {{"cause", to_string(static_cast<Cause>(c))}, {"code", code_label(b)}},
                   s.closed[c][b]);
  }
  counter(w, "tether_heartbeat_timeouts_total",
          "Connections dropped because nothing was received for ping interval + ping timeout.",
          s.closed_by_cause(Cause::heartbeat_timeout));

  bool any = false;
  for (auto v : s.rejected_handshakes) any = any || v > 0;
  if (any) {
    w.family("tether_handshake_rejections_total", "counter",
             "Opening handshakes answered with an HTTP error status instead of 101.");
    for (std::size_t b = 0; b < status_bucket_count; ++b)
      if (s.rejected_handshakes[b] > 0)
        w.sample("tether_handshake_rejections_total", {{"status", status_label(b)}},
                 s.rejected_handshakes[b]);
  }
  any = false;
  for (auto v : s.failed_handshakes) any = any || v > 0;
  if (any) {
    w.family("tether_handshake_failures_total", "counter",
             "Connections that ended before the upgrade completed, without an HTTP answer "
             "(handshake timeout, TLS failure, peer gone), by cause.");
    for (std::size_t c = 0; c < cause_count; ++c)
      if (s.failed_handshakes[c] > 0)
        w.sample("tether_handshake_failures_total", {{"cause", to_string(static_cast<Cause>(c))}},
                 s.failed_handshakes[c]);
  }

  w.family("tether_rtt_seconds", "histogram",
           "Heartbeat round trip: our ping sent to its pong received.");
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < rtt_bucket_count; ++i) {
    cumulative += s.rtt_buckets[i];
    w.sample("tether_rtt_seconds_bucket", {{"le", rtt_bound_label(i)}}, cumulative);
  }
  cumulative += s.rtt_buckets[rtt_bucket_count];
  w.sample("tether_rtt_seconds_bucket", {{"le", "+Inf"}}, cumulative);
  w.sample("tether_rtt_seconds_sum", {}, static_cast<double>(s.rtt_sum_ns) / 1e9);
  w.sample("tether_rtt_seconds_count", {}, cumulative);

  counter(w, "tether_received_bytes_total",
          "Bytes read from client sockets (HTTP, frame headers and TLS records included).",
          s.bytes_received);
  counter(w, "tether_sent_bytes_total",
          "Bytes written to client sockets (HTTP, frame headers and TLS records included).",
          s.bytes_sent);
  counter(w, "tether_received_messages_total", "WebSocket data messages received.",
          s.messages_received);
  counter(w, "tether_sent_messages_total", "WebSocket data messages queued for sending.",
          s.messages_sent);

  w.family("tether_send_queue_bytes", "gauge",
           "Bytes queued on all connections and not yet written to their sockets.");
  w.sample("tether_send_queue_bytes", {}, s.send_queue_bytes);

  w.family("tether_dropped_messages_total", "counter",
           "Messages not sent: a fan-out skipped a slow subscriber, or a send buffer was full.");
  for (std::size_t r = 0; r < drop_reason_count; ++r)
    w.sample("tether_dropped_messages_total",
             {{"reason", drop_reason_label(static_cast<DropReason>(r))}}, s.dropped[r]);

  counter(w, "tether_resumes_total", "tether.resume.v1 sessions resumed by a reconnecting client.",
          s.resumes);
  counter(w, "tether_resume_replays_total", "Messages sent again after resumes.", s.resume_replays);
  counter(w, "tether_resume_failures_total",
          "Resume hellos answered with resume_failed (unknown session, window exceeded).",
          s.resume_failures);

  if (s.redis_up >= 0) {
    w.family("tether_redis_up", "gauge", "1 when the Redis link is up, 0 when it is down.");
    w.sample("tether_redis_up", {}, static_cast<uint64_t>(s.redis_up > 0 ? 1 : 0));
    counter(w, "tether_redis_reconnects_total", "Reconnections of the Redis link.",
            s.redis_reconnects);
    counter(w, "tether_redis_publish_failures_total", "Publishes to Redis that failed.",
            s.redis_publish_failures);
  }
  return out;
}

}  // namespace tether::metrics
