// The /metrics renderer on fixed input: no socket, no clock. Label escaping, histogram
// cumulative buckets and +Inf, _sum/_count, families left out while empty, bounded labels.
#include "metrics/exposition.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/counters.hpp"

namespace {

using namespace tether;
using namespace tether::metrics;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "name{labels}" -> value, for every sample line.
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

TEST(Exposition, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  // HELP text escapes backslash and newline only (quotes stay).
  EXPECT_EQ(escape_help("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
}

TEST(Exposition, ValuesUseShortestFormAndInfSpelling) {
  EXPECT_EQ(format_value(0.5), "0.5");
  EXPECT_EQ(format_value(12.0), "12");
  EXPECT_EQ(format_value(0.0005), "0.0005");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
}

TEST(Exposition, WriterPutsHelpAndTypeBeforeSamples) {
  std::string out;
  TextWriter w(out);
  w.family("x_total", "counter", "Things.\nMore");
  w.sample("x_total", {{"a", "1"}, {"b", "q\""}}, uint64_t{7});
  w.sample("x_total", {}, 2.5);
  EXPECT_EQ(out,
            "# HELP x_total Things.\\nMore\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"1\",b=\"q\\\"\"} 7\n"
            "x_total 2.5\n");
}

TEST(Exposition, CloseCodesAndStatusesMapToBoundedBuckets) {
  EXPECT_EQ(code_label(code_bucket(1000)), "1000");
  EXPECT_EQ(code_label(code_bucket(1006)), "1006");
  EXPECT_EQ(code_label(code_bucket(1015)), "1015");
  EXPECT_EQ(code_label(code_bucket(1016)), "other");
  EXPECT_EQ(code_label(code_bucket(3000)), "3xxx");
  EXPECT_EQ(code_label(code_bucket(3999)), "3xxx");
  EXPECT_EQ(code_label(code_bucket(4000)), "4xxx");
  EXPECT_EQ(code_label(code_bucket(4999)), "4xxx");
  EXPECT_EQ(code_label(code_bucket(5000)), "other");
  EXPECT_EQ(code_label(code_bucket(999)), "other");
  EXPECT_EQ(status_label(status_bucket(403)), "403");
  EXPECT_EQ(status_label(status_bucket(431)), "431");
  EXPECT_EQ(status_label(status_bucket(503)), "503");
  EXPECT_EQ(status_label(status_bucket(418)), "other");
}

TEST(Exposition, HistogramBoundsAreInclusiveUpperLimits) {
  Histogram h;
  h.observe(500'000);         // exactly 0.5 ms: le="0.0005"
  h.observe(500'001);         // just above: le="0.001"
  h.observe(10'000'000'000);  // exactly 10 s: le="10"
  h.observe(10'000'000'001);  // above every bound: +Inf only
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(rtt_bucket_count - 1), 1u);
  EXPECT_EQ(h.bucket(rtt_bucket_count), 1u);
  EXPECT_EQ(h.sum_ns(), 500'000u + 500'001u + 10'000'000'000u + 10'000'000'001u);
}

Snapshot fixed_snapshot() {
  StreamCounters loop1, loop2;
  loop1.opened.add(3);
  loop2.opened.add(2);
  loop1.closed_with(Cause::remote_close, 1000);
  loop2.closed_with(Cause::remote_close, 1000);
  loop1.closed_with(Cause::heartbeat_timeout, 1006);
  loop2.closed_with(Cause::local_close, 4321);
  loop1.rejected_handshakes[status_bucket(403)].add();
  loop2.failed_handshakes[static_cast<std::size_t>(Cause::handshake_timeout)].add();
  loop1.rtt.observe(400'000);         // 0.0004 s
  loop2.rtt.observe(3'000'000);       // 0.003 s
  loop2.rtt.observe(4'000'000);       // 0.004 s
  loop1.rtt.observe(20'000'000'000);  // 20 s: +Inf
  loop1.bytes_received.add(1000);
  loop2.bytes_received.add(234);
  loop1.bytes_sent.add(77);
  loop1.messages_received.add(4);
  loop2.messages_sent.add(5);
  loop1.drop(DropReason::slow_subscriber);
  loop2.drop(DropReason::send_buffer_full);
  loop2.drop(DropReason::send_buffer_full);
  loop1.send_queue_bytes.move(0, 300);
  loop2.send_queue_bytes.move(0, 50);
  loop2.send_queue_bytes.move(50, 20);  // a flush: the gauge goes down
  loop1.resumes.add();
  loop1.resume_replays.add(6);
  loop2.resume_failures.add();
  Snapshot s;
  s.add(loop1);
  s.add(loop2);
  return s;
}

TEST(Exposition, RendersTheSumOverLoops) {
  const auto m = samples_of(render(fixed_snapshot(), "1.2.3"));
  EXPECT_EQ(m.at("tether_build_info{version=\"1.2.3\"}"), "1");
  EXPECT_EQ(m.at("tether_connections_opened_total"), "5");
  EXPECT_EQ(m.at("tether_connections_open"), "1");  // 5 opened - 4 closed
  EXPECT_EQ(m.at("tether_connections_closed_total{cause=\"remote_close\",code=\"1000\"}"), "2");
  EXPECT_EQ(m.at("tether_connections_closed_total{cause=\"heartbeat_timeout\",code=\"1006\"}"),
            "1");
  EXPECT_EQ(m.at("tether_connections_closed_total{cause=\"local_close\",code=\"4xxx\"}"), "1");
  EXPECT_EQ(m.at("tether_heartbeat_timeouts_total"), "1");
  EXPECT_EQ(m.at("tether_handshake_rejections_total{status=\"403\"}"), "1");
  EXPECT_EQ(m.at("tether_handshake_failures_total{cause=\"handshake_timeout\"}"), "1");
  EXPECT_EQ(m.at("tether_received_bytes_total"), "1234");
  EXPECT_EQ(m.at("tether_sent_bytes_total"), "77");
  EXPECT_EQ(m.at("tether_received_messages_total"), "4");
  EXPECT_EQ(m.at("tether_sent_messages_total"), "5");
  EXPECT_EQ(m.at("tether_send_queue_bytes"), "320");
  EXPECT_EQ(m.at("tether_dropped_messages_total{reason=\"slow_subscriber\"}"), "1");
  EXPECT_EQ(m.at("tether_dropped_messages_total{reason=\"send_buffer_full\"}"), "2");
  EXPECT_EQ(m.at("tether_resumes_total"), "1");
  EXPECT_EQ(m.at("tether_resume_replays_total"), "6");
  EXPECT_EQ(m.at("tether_resume_failures_total"), "1");
  // Only series with a count appear for the open-ended label sets.
  EXPECT_EQ(m.count("tether_connections_closed_total{cause=\"remote_close\",code=\"1001\"}"), 0u);
  EXPECT_EQ(m.count("tether_handshake_rejections_total{status=\"503\"}"), 0u);
  // No Redis configured: no Redis families.
  EXPECT_EQ(m.count("tether_redis_up"), 0u);
}

TEST(Exposition, HistogramIsCumulativeWithInfEqualToCount) {
  const auto m = samples_of(render(fixed_snapshot(), "x"));
  auto bucket = [&](const char* le) {
    return m.at(std::string("tether_rtt_seconds_bucket{le=\"") + le + "\"}");
  };
  EXPECT_EQ(bucket("0.0005"), "1");
  EXPECT_EQ(bucket("0.001"), "1");
  EXPECT_EQ(bucket("0.0025"), "1");
  EXPECT_EQ(bucket("0.005"), "3");
  EXPECT_EQ(bucket("10"), "3");
  EXPECT_EQ(bucket("+Inf"), "4");
  EXPECT_EQ(m.at("tether_rtt_seconds_count"), "4");
  EXPECT_EQ(m.at("tether_rtt_seconds_sum"), "20.0074");
  // Buckets in increasing `le` order, +Inf last, then _sum and _count.
  const auto lines = lines_of(render(fixed_snapshot(), "x"));
  std::vector<std::string> order;
  for (const auto& l : lines)
    if (l.starts_with("tether_rtt_seconds")) order.push_back(l.substr(0, l.find(' ')));
  ASSERT_EQ(order.size(), rtt_bucket_count + 3);
  EXPECT_EQ(order[0], "tether_rtt_seconds_bucket{le=\"0.0005\"}");
  EXPECT_EQ(order[rtt_bucket_count], "tether_rtt_seconds_bucket{le=\"+Inf\"}");
  EXPECT_EQ(order[rtt_bucket_count + 1], "tether_rtt_seconds_sum");
  EXPECT_EQ(order[rtt_bucket_count + 2], "tether_rtt_seconds_count");
}

TEST(Exposition, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  Snapshot s = fixed_snapshot();
  s.redis_up = 1;
  s.redis_reconnects = 2;
  const auto lines = lines_of(render(s, "v"));
  std::map<std::string, std::string> types;
  std::string help_for;
  for (const auto& l : lines) {
    ASSERT_FALSE(l.empty());
    if (l.starts_with("# HELP ")) {
      help_for = l.substr(7, l.find(' ', 7) - 7);
      continue;
    }
    if (l.starts_with("# TYPE ")) {
      const auto name = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_EQ(name, help_for) << "TYPE without HELP just before: " << l;
      EXPECT_EQ(types.count(name), 0u) << "family twice: " << name;
      types[name] = l.substr(l.rfind(' ') + 1);
      if (types[name] == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << name;
      }
      continue;
    }
    std::string name = l.substr(0, l.find_first_of("{ "));
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!types.count(family) && name.ends_with(suffix))
        family = name.substr(0, name.size() - std::string(suffix).size());
    EXPECT_TRUE(types.count(family)) << "sample before its TYPE: " << l;
  }
  EXPECT_EQ(types.at("tether_rtt_seconds"), "histogram");
  EXPECT_EQ(types.at("tether_redis_up"), "gauge");
  const auto m = samples_of(render(s, "v"));
  EXPECT_EQ(m.at("tether_redis_up"), "1");
  EXPECT_EQ(m.at("tether_redis_reconnects_total"), "2");
  EXPECT_EQ(m.at("tether_redis_publish_failures_total"), "0");
}

TEST(Exposition, EmptySnapshotStillHasTheFixedFamilies) {
  const auto m = samples_of(render(Snapshot{}, "v"));
  EXPECT_EQ(m.at("tether_connections_open"), "0");
  EXPECT_EQ(m.at("tether_connections_opened_total"), "0");
  EXPECT_EQ(m.at("tether_rtt_seconds_bucket{le=\"+Inf\"}"), "0");
  EXPECT_EQ(m.at("tether_rtt_seconds_sum"), "0");
  EXPECT_EQ(m.at("tether_dropped_messages_total{reason=\"slow_subscriber\"}"), "0");
  EXPECT_EQ(m.count("tether_connections_closed_total"), 0u);
}

TEST(Exposition, OpenGaugeNeverGoesNegative) {
  Snapshot s;
  s.opened = 1;
  s.closed[0][0] = 2;  // read a moment apart: more closes than opens seen
  EXPECT_EQ(s.open(), 0u);
}

}  // namespace
