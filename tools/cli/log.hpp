// Structured logs on stderr for `tether serve` (--log-format text|json, --log-level): one line
// per event, written with a single write so lines from several loop threads never interleave.
//
//   text: 2026-11-26T08:00:00.123Z info close id=7 peer=127.0.0.1:5000 code=1006 ...
//   json: {"ts":"2026-11-26T08:00:00.123Z","level":"info","event":"close","id":7,...}
//
// Text values are bare when they are a plain word or number, else double-quoted with \" \\ \n
// escapes (logfmt), so a line splits on spaces unambiguously.
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tether::cli {

enum class LogLevel { debug, info, warn, error };
enum class LogFormat { text, json };

std::optional<LogLevel> parse_log_level(std::string_view s);
std::string_view to_string(LogLevel level);
// RFC 3339 UTC with milliseconds: 2026-11-26T08:00:00.123Z.
std::string utc_timestamp(std::chrono::system_clock::time_point t);
// One line without the newline; `fields` is a JSON object (insertion order kept).
std::string format_log_line(LogFormat format, std::string_view ts, LogLevel level,
                            std::string_view event, const nlohmann::ordered_json& fields);
// Milliseconds with microsecond precision, as a JSON number (12.345).
double to_ms(std::chrono::nanoseconds d);

class Logger {
 public:
  Logger(LogFormat format, LogLevel min_level) : format_(format), min_(min_level) {}
  bool enabled(LogLevel level) const { return level >= min_; }
  void log(LogLevel level, std::string_view event, const nlohmann::ordered_json& fields = {}) const;

 private:
  LogFormat format_;
  LogLevel min_;
};

}  // namespace tether::cli
