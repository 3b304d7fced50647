// Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): a pure function from a
// Snapshot to the text /metrics serves, and the small writer it is built on. No socket, no clock.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "metrics/counters.hpp"

namespace tether::metrics {

// The Content-Type of the format.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

using Label = std::pair<std::string_view, std::string_view>;

// Appends metric families to `out`: family() writes the HELP and TYPE lines, then sample() the
// lines of that family. Label values and HELP text are escaped as the format requires
// (label values: \ " and newline; HELP: \ and newline).
class TextWriter {
 public:
  explicit TextWriter(std::string& out) : out_(out) {}
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);

 private:
  void begin_sample(std::string_view name, std::initializer_list<Label> labels);
  std::string& out_;
};

std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// Shortest round-trip decimal form; "+Inf", "-Inf", "NaN" for the special values.
std::string format_value(double v);

// The whole /metrics page. Families whose every series is zero and whose labels have no fixed
// set (closes by cause and code, handshake failures and rejections) are left out until they
// have a sample; the Redis families only appear once Redis is configured (redis_up >= 0).
std::string render(const Snapshot& s, std::string_view version);

}  // namespace tether::metrics
